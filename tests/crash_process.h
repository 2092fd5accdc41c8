// A real homeward-server (or the homeward CLI) run as a child process, for the crash harness
// (bench/crash_import.cc) and the disk-full test (tests/disk_full_test.cc): start it with its
// output appended to a log file, wait for a line such as "listening on", signal it, reap it.
// Header-only, POSIX. THREAD SAFETY: one ChildProcess per child, used from one thread; the
// destructor SIGKILLs a child still running.
#ifndef HOMEWARD_TESTS_CRASH_PROCESS_H_
#define HOMEWARD_TESTS_CRASH_PROCESS_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace homeward::crashtest {

inline int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline std::string ReadWholeFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;

  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait(10);
    }
  }

  // Starts `args` (args[0] is the program path) with stdout and stderr appended to `log`,
  // OMP_WAIT_POLICY=PASSIVE in its environment. Returns false if fork fails.
  bool Start(std::vector<std::string> args, const std::filesystem::path& log) {
    log_ = log;
    std::error_code ec;
    log_offset_ = std::filesystem::exists(log, ec) ? std::filesystem::file_size(log, ec) : 0;
    started_ = Clock::now();
    exit_status_ = -1;
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      const int null_fd = open("/dev/null", O_RDONLY);
      dup2(null_fd, 0);
      setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return true;
  }

  // Waits until the log written since Start holds `marker`. Returns the seconds since Start,
  // or -1 when the child exited first or `timeout_s` passed.
  double WaitForLog(const std::string& marker, double timeout_s) {
    const auto deadline = started_ + std::chrono::duration<double>(timeout_s);
    while (Clock::now() < deadline) {
      if (NewLog().find(marker) != std::string::npos) {
        return std::chrono::duration<double>(Clock::now() - started_).count();
      }
      if (!Running()) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  // The log written since Start.
  std::string NewLog() const {
    std::string all = ReadWholeFile(log_);
    return log_offset_ <= all.size() ? all.substr(log_offset_) : all;
  }

  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      Reaped(status);
      return false;
    }
    return r == 0;
  }

  void Signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // Waits for the child to exit. Returns its exit code, 128 + signal when a signal ended it,
  // or -1 on timeout (the child is left running).
  int Wait(double timeout_s) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (pid_ > 0) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        Reaped(status);
        break;
      }
      if (r < 0 || Clock::now() >= deadline) return r < 0 ? exit_status_ : -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exit_status_;
  }

  pid_t pid() const { return pid_; }
  int exit_status() const { return exit_status_; }

 private:
  void Reaped(int status) {
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int exit_status_ = -1;
  std::filesystem::path log_;
  size_t log_offset_ = 0;
  Clock::time_point started_;
};

}  // namespace homeward::crashtest

#endif  // HOMEWARD_TESTS_CRASH_PROCESS_H_
