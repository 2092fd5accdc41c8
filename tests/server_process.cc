#include "tests/server_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace homeward::testing {
namespace fs = std::filesystem;

std::string MakeTempDirOrDie(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) out.push_back(it->path().string());
  }
  return out;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int RunCommand(const std::vector<std::string>& argv, std::string* out, std::string* err) {
  std::string dir = MakeTempDirOrDie("hw_cmd_");
  std::string out_file = dir + "/out", err_file = dir + "/err";
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int o = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(o, STDOUT_FILENO);
    dup2(e, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (out) *out = ReadWholeFile(out_file);
  if (err) *err = ReadWholeFile(err_file);
  fs::remove_all(dir);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int FreeLoopbackPort() {
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

// ---- ChildProcess -------------------------------------------------------------------------

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Wait(10);
  }
}

bool ChildProcess::Start(std::vector<std::string> args, const std::string& log,
                         const std::string& out, const ChildOptions& options) {
  log_ = log;
  std::error_code ec;
  log_offset_ = fs::exists(log, ec) ? fs::file_size(log, ec) : 0;
  started_ = Clock::now();
  exit_status_ = -1;
  term_signal_ = 0;
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    if (options.new_session) setsid();
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(126);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int out_fd = out.empty() ? fd : open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out_fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    for (const auto& [name, value] : options.env) setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return true;
}

double ChildProcess::WaitForLog(const std::string& marker, double timeout_s) {
  const auto deadline = started_ + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < deadline) {
    if (NewLog().find(marker) != std::string::npos) return Age();
    if (!Running()) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ChildProcess::NewLog() const {
  std::string all = ReadWholeFile(log_);
  return log_offset_ <= all.size() ? all.substr(log_offset_) : all;
}

double ChildProcess::Age() const {
  return std::chrono::duration<double>(Clock::now() - started_).count();
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    Reaped(status);
    return false;
  }
  return r == 0;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ChildProcess::Wait(double timeout_s) {
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

void ChildProcess::Reaped(int status) {
  term_signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  pid_ = -1;
}

// ---- ServerProcess ------------------------------------------------------------------------

std::string ServerProcess::data_dir() const {
  return options_.data_dir.empty() ? dir_ + "/data" : options_.data_dir;
}

std::string ServerProcess::AddKey(const std::string& id, const std::string& role,
                                  std::string* error) const {
  std::string out, err;
  const int rc =
      RunCommand({binary_, "--add-key", role, "--key-id", id, "--api-keys", keys_file()}, &out,
                 &err);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (rc != 0 || out.rfind("hwk_", 0) != 0) {
    *error = "--add-key " + role + " --key-id " + id + ": exit " + std::to_string(rc) +
             ", stdout '" + out + "', stderr: " + err;
    return "";
  }
  return out;
}

bool ServerProcess::Start(const ServerOptions& options, std::string* error) {
  options_ = options;
  address_.clear();
  http_address_.clear();
  return Restart(error);
}

bool ServerProcess::Restart(std::string* error) {
  if (child_.Running()) {
    *error = "the server is still running";
    return false;
  }
  // The first start binds free ports; a restart binds the ones it had.
  std::vector<std::string> args = {binary_, "--listen",
                                   address_.empty() ? "127.0.0.1:0" : address_, "--data-dir",
                                   data_dir()};
  if (options_.http) {
    args.insert(args.end(),
                {"--http-listen", http_address_.empty() ? "127.0.0.1:0" : http_address_});
  }
  if (options_.insecure_dev) {
    args.push_back("--insecure-dev");
  } else {
    args.insert(args.end(), {"--api-keys", keys_file()});
  }
  args.insert(args.end(), options_.flags.begin(), options_.flags.end());
  std::error_code ec;
  fs::remove(out_path(), ec);  // a previous run's ready line must not be taken for this one's
  if (!child_.Start(args, log_path(), out_path(), options_.child)) {
    *error = "fork failed";
    return false;
  }
  while (child_.Age() < options_.timeout_s) {
    std::istringstream lines(ReadWholeFile(out_path()));
    std::string line, address, http_address;
    while (std::getline(lines, line)) {
      if (line.rfind("listening on ", 0) == 0) address = line.substr(13);
      if (line.rfind("http listening on ", 0) == 0) http_address = line.substr(18);
    }
    if (!address.empty() && (!options_.http || !http_address.empty())) {
      address_ = address;
      http_address_ = http_address;
      ready_seconds_ = child_.Age();
      return true;
    }
    if (!child_.Running()) {
      std::string tail = Log();
      *error = "the server exited before it was ready: " +
               tail.substr(tail.size() > 2000 ? tail.size() - 2000 : 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *error = "the server was not ready in time";
  return false;
}

int ServerProcess::StopWith(int sig) {
  if (child_.pid() <= 0) return -1;
  child_.Signal(sig);
  const int rc = child_.Wait(24 * 3600);
  return child_.term_signal() != 0 ? -1 : rc;
}

int ServerProcess::Stop() { return StopWith(SIGTERM); }
int ServerProcess::Kill() { return StopWith(SIGKILL); }

}  // namespace homeward::testing
