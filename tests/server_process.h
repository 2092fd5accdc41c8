// Runs the real homeward-server binary as a child process for end-to-end tests: stdout and
// stderr go to files under the test's directory (the log is what the tests grep), the bound
// gRPC and HTTP addresses are read from the ready lines, and Stop sends SIGTERM and waits.
//
// THREAD SAFETY: one thread per ServerProcess. OWNERSHIP: the destructor SIGKILLs a child
// that is still running.
#ifndef HOMEWARD_TESTS_SERVER_PROCESS_H_
#define HOMEWARD_TESTS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace homeward::testing {

// A fresh directory under the system temp dir: <prefix>XXXXXX.
std::string MakeTempDirOrDie(const std::string& prefix);
// Every regular file under `dir`, recursively (absolute paths).
std::vector<std::string> FilesUnder(const std::string& dir);
std::string ReadWholeFile(const std::string& path);  // "" when unreadable
// Runs argv, waits; returns the exit code (-1 on failure to run) and the captured output.
int RunCommand(const std::vector<std::string>& argv, std::string* out, std::string* err);
// true when the recognition and landmark models and the demo photos are installed.
bool ModelsInstalled();

class ServerProcess {
 public:
  ServerProcess(std::string binary, std::string log_dir)
      : binary_(std::move(binary)), log_dir_(std::move(log_dir)) {}
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the binary with `args` and waits (up to timeout_s) for "listening on" (and for
  // "http listening on" when want_http). false with *error (and the log's tail) on failure.
  bool Start(const std::vector<std::string>& args, bool want_http, std::string* error,
             int timeout_s = 180);
  // SIGTERM, then waits; returns the exit status (-1 if it did not exit normally).
  int Stop();
  void Signal(int sig) const;
  bool running() const { return pid_ > 0; }
  const std::string& address() const { return address_; }
  const std::string& http_address() const { return http_address_; }
  std::string log_path() const { return log_dir_ + "/server.log"; }
  std::string out_path() const { return log_dir_ + "/server.out"; }
  std::string Log() const { return ReadWholeFile(log_path()); }

 private:
  std::string binary_, log_dir_;
  pid_t pid_ = -1;
  std::string address_, http_address_;
};

}  // namespace homeward::testing

#endif  // HOMEWARD_TESTS_SERVER_PROCESS_H_
