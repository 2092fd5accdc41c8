// Child processes for the end-to-end tests and the reliability benches: the real
// homeward-server binary (or the homeward CLI) run as a child, its output in files, its
// ready lines awaited, signalled, reaped and restarted.
//
// - ChildProcess: any program, stdout and stderr appended to one log; wait for a marker in
//   what it logged since its start, signal it, wait for its exit (bench/crash_import.cc runs
//   the server and the importing CLI with it, tests/disk_full_test.cc the server).
// - ServerProcess: homeward-server in a directory of its own (data in <dir>/data, API keys in
//   <dir>/keys.jsonl), on free loopback ports (--listen 127.0.0.1:0, the bound address read
//   from its "listening on" line), stopped with SIGTERM or SIGKILL, restarted on the same data
//   dir and addresses.
//
// THREAD SAFETY: one thread per object. OWNERSHIP: the destructors SIGKILL a child that is
// still running and reap it. POSIX only; no gRPC (the benches link this too).
#ifndef HOMEWARD_TESTS_SERVER_PROCESS_H_
#define HOMEWARD_TESTS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace homeward::testing {

// A fresh directory under the system temp dir: <prefix>XXXXXX.
std::string MakeTempDirOrDie(const std::string& prefix);
// Every regular file under `dir`, recursively (absolute paths).
std::vector<std::string> FilesUnder(const std::string& dir);
std::string ReadWholeFile(const std::string& path);  // "" when unreadable
// Runs argv, waits; returns the exit code (-1 on failure to run) and the captured output.
int RunCommand(const std::vector<std::string>& argv, std::string* out, std::string* err);
// A loopback TCP port that was free a moment ago (bound to port 0, read back, closed).
int FreeLoopbackPort();

// How a child starts besides its argv. Every child gets OMP_WAIT_POLICY=PASSIVE.
struct ChildOptions {
  std::string cwd;                                        // "" = ours
  std::vector<std::pair<std::string, std::string>> env;   // set in the child
  bool new_session = false;  // setsid(): its own session (no terminal signals)
};

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;

  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts `args` (args[0] is the program path), stdin from /dev/null. With `out` empty
  // stdout and stderr are appended to `log`; else stdout goes to `out` (truncated) and stderr
  // is appended to `log`. Returns false if fork fails.
  bool Start(std::vector<std::string> args, const std::string& log, const std::string& out = "",
             const ChildOptions& options = {});
  // Waits until the log written since Start holds `marker`. Returns the seconds since Start,
  // or -1 when the child exited first or `timeout_s` passed.
  double WaitForLog(const std::string& marker, double timeout_s);
  // The log written since Start.
  std::string NewLog() const;
  // Seconds since Start.
  double Age() const;
  bool Running();
  void Signal(int sig);
  // Waits for the child to exit. Returns its exit code, 128 + signal when a signal ended it,
  // or -1 on timeout (the child is left running); once reaped, the last child's status.
  int Wait(double timeout_s);
  pid_t pid() const { return pid_; }
  int exit_status() const { return exit_status_; }
  int term_signal() const { return term_signal_; }  // the signal that ended it, 0 if none

 private:
  void Reaped(int status);

  pid_t pid_ = -1;
  int exit_status_ = -1;
  int term_signal_ = 0;
  std::string log_;
  size_t log_offset_ = 0;
  Clock::time_point started_;
};

// How ServerProcess::Start runs homeward-server. It always passes --listen (127.0.0.1:0 on the
// first start) and --data-dir; --api-keys <dir>/keys.jsonl unless insecure_dev.
struct ServerOptions {
  std::vector<std::string> flags;  // further flags, e.g. {"--workers", "1"}
  bool http = false;               // also --http-listen 127.0.0.1:0 and wait for its ready line
  bool insecure_dev = false;       // --insecure-dev instead of --api-keys
  std::string data_dir;            // "" = <dir>/data
  ChildOptions child;
  int timeout_s = 180;             // for the ready lines
};

class ServerProcess {
 public:
  // `binary`: the homeward-server path. `dir`: where the keys file, the logs and (by
  // default) the data dir live; the caller creates and removes it.
  ServerProcess(std::string binary, std::string dir)
      : binary_(std::move(binary)), dir_(std::move(dir)) {}
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // `binary --add-key ROLE --key-id ID --api-keys keys_file()`, as an operator would. Returns
  // the key (it starts with "hwk_"), or "" with *error (exit code and stderr) on failure.
  std::string AddKey(const std::string& id, const std::string& role, std::string* error) const;

  // Starts the server and waits (up to options.timeout_s) for "listening on" (and "http
  // listening on" when options.http) on its stdout. false with *error (and the log's tail)
  // when it exits first or is not ready in time.
  bool Start(const ServerOptions& options, std::string* error);
  // Starts it again with the same options on the same data dir and the addresses it had.
  bool Restart(std::string* error);
  // SIGTERM (Stop) or SIGKILL (Kill), then waits. Returns the exit code, -1 if it did not
  // exit normally (a signal ended it) or there was no server running.
  int Stop();
  int Kill();
  void Signal(int sig) { child_.Signal(sig); }
  bool running() { return child_.Running(); }
  pid_t pid() const { return child_.pid(); }

  const std::string& dir() const { return dir_; }
  std::string data_dir() const;
  std::string keys_file() const { return dir_ + "/keys.jsonl"; }
  const std::string& address() const { return address_; }
  const std::string& http_address() const { return http_address_; }
  // Seconds from the last Start until it was ready.
  double ready_seconds() const { return ready_seconds_; }
  std::string log_path() const { return dir_ + "/server.log"; }  // stderr, appended
  std::string out_path() const { return dir_ + "/server.out"; }  // stdout of the last start
  std::string Log() const { return ReadWholeFile(log_path()); }

 private:
  int StopWith(int sig);

  std::string binary_, dir_;
  ServerOptions options_;
  ChildProcess child_;
  std::string address_, http_address_;
  double ready_seconds_ = 0;
};

}  // namespace homeward::testing

#endif  // HOMEWARD_TESTS_SERVER_PROCESS_H_
