#include "tests/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/embed_test_util.h"

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

bool ModelsInstalled() {
  return fs::exists(RecognitionModelPath()) &&
         fs::exists("/usr/share/dlib/shape_predictor_68_face_landmarks.dat") &&
         fs::exists(DemoDir() + "/sample2.jpg");
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool ServerProcess::Start(const std::vector<std::string>& args, bool want_http,
                          std::string* error, int timeout_s) {
  std::string out = out_path(), log = log_path();
  std::error_code ec;
  fs::remove(out, ec);  // a previous run's ready line must not be taken for this one's
  pid_ = fork();
  if (pid_ < 0) {
    *error = "fork failed";
    return false;
  }
  if (pid_ == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(o, STDOUT_FILENO);
    dup2(e, STDERR_FILENO);
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    std::vector<char*> argv = {const_cast<char*>(binary_.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::istringstream lines(ReadWholeFile(out));
    std::string line;
    address_.clear();
    http_address_.clear();
    while (std::getline(lines, line)) {
      if (line.rfind("listening on ", 0) == 0) address_ = line.substr(13);
      if (line.rfind("http listening on ", 0) == 0) http_address_ = line.substr(18);
    }
    if (!address_.empty() && (!want_http || !http_address_.empty())) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::string tail = ReadWholeFile(log);
      *error = "the server exited before it was ready: " +
               tail.substr(tail.size() > 2000 ? tail.size() - 2000 : 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *error = "the server was not ready in time";
  return false;
}

int ServerProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ServerProcess::Signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

}  // namespace homeward::testing
