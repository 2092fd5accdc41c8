// End-to-end tests of the `homeward` CLI: a real homeward-server on a free loopback port with
// a temporary data directory, and the real CLI run as a subprocess with --json.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/embed_test_util.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kServerBin[] = HOMEWARD_SERVER_BIN;
constexpr char kCliBin[] = HOMEWARD_CLI_BIN;
constexpr auto kServerStartTimeout = std::chrono::seconds(300);

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// The one-face photo of tests/embed_test_util.h (sample2.jpg cut to its right-hand face: the
// CNN detector finds three faces in the whole photo), written once to a file of this process.
const fs::path* one_face_photo = nullptr;

fs::path OneFacePhoto() {
  if (one_face_photo == nullptr) {
    one_face_photo = new fs::path(fs::temp_directory_path() /
                                  ("hw_cli_one_face_" + std::to_string(getpid()) + ".jpg"));
    WriteFile(*one_face_photo, homeward::testing::OneFaceSample2());
    std::atexit([] {
      std::error_code ec;
      fs::remove(*one_face_photo, ec);
    });
  }
  return *one_face_photo;
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

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `args` to completion, capturing stdout and stderr.
RunResult RunProcess(std::vector<std::string> args) {
  int out_pipe[2], err_pipe[2];
  EXPECT_EQ(pipe(out_pipe), 0);
  EXPECT_EQ(pipe(err_pipe), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]);
    close(err_pipe[0]);
    auto argv = Argv(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  RunResult r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/homeward_cli_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = new fs::path(tmpl);
    address_ = new std::string("127.0.0.1:" + std::to_string(FreeLoopbackPort()));
    const fs::path log = *tmp_ / "server.log";
    server_pid_ = fork();
    if (server_pid_ == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<std::string> args = {
          kServerBin,      "--listen", *address_, "--data-dir", (*tmp_ / "data").string(),
          "--insecure-dev"};
      auto argv = Argv(args);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + kServerStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReadFile(log).find("listening on") != std::string::npos) return;
      int status;
      if (waitpid(server_pid_, &status, WNOHANG) == server_pid_) {
        server_pid_ = -1;
        FAIL() << "homeward-server exited during start-up:\n" << ReadFile(log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "homeward-server did not log 'listening on' in time:\n" << ReadFile(log);
  }

  static void TearDownTestSuite() {
    if (server_pid_ > 0) {
      kill(server_pid_, SIGTERM);
      int status;
      for (int i = 0; i < 100 && waitpid(server_pid_, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (waitpid(server_pid_, &status, WNOHANG) == 0) {
        kill(server_pid_, SIGKILL);
        waitpid(server_pid_, &status, 0);
      }
      server_pid_ = -1;
    }
    std::error_code ec;
    if (tmp_) fs::remove_all(*tmp_, ec);
    delete tmp_;
    delete address_;
    tmp_ = nullptr;
    address_ = nullptr;
  }

  void SetUp() override {
    if (server_pid_ <= 0) GTEST_SKIP() << "no server";
  }

  // `homeward --server ADDR --json ARGS...`
  static RunResult Cli(std::vector<std::string> args) {
    std::vector<std::string> full = {kCliBin, "--server", *address_, "--json"};
    full.insert(full.end(), args.begin(), args.end());
    return RunProcess(full);
  }

  // Runs the CLI, expects `exit_code` and one JSON document on stdout.
  static Json CliJson(std::vector<std::string> args, int exit_code = 0) {
    RunResult r = Cli(args);
    EXPECT_EQ(r.exit_code, exit_code) << "stderr: " << r.err << "\nstdout: " << r.out;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not one JSON document: " << r.out;
    return j;
  }

  // A name no other test uses.
  static std::string UniqueName(const std::string& base) {
    static std::mt19937 rng(std::random_device{}());
    return base + "-" + std::to_string(rng() % 1000000);
  }

  // Cases of `kind` whose name is `name`, over every page.
  static int CountCasesNamed(const std::string& kind, const std::string& name) {
    Json list = CliJson({"case", "list", "--kind", kind, "--all", "--page-size", "1000"});
    int n = 0;
    for (const Json& c : list["cases"]) n += c.value("displayName", "") == name;
    return n;
  }

  static std::string CreateCase(const std::string& kind, const std::string& name) {
    Json c =
        CliJson({"case", "create", "--kind", kind, "--name", name, "--sex", "f", "--birth-date",
                 "2015-03-02", "--place", "Lisbon", "--event-date", "2023-06-01"});
    EXPECT_TRUE(c["id"].is_string());
    return c.value("id", "");
  }

  static bool HasCandidate(const Json& reply, const std::string& case_id) {
    for (const Json& r : reply["results"]) {
      for (const Json& c : r["candidates"]) {
        if (c["case"].value("id", "") == case_id) return true;
      }
    }
    return false;
  }

  static inline fs::path* tmp_ = nullptr;
  static inline std::string* address_ = nullptr;
  static inline pid_t server_pid_ = -1;
};

TEST_F(CliTest, SightingWithoutAnAgePrintsTheAgeTheFaceGave) {
  Json sighting = CliJson({"sighting", "submit", OneFacePhoto().string(), "--place", "Market"});
  ASSERT_TRUE(sighting["caseId"].is_string()) << sighting.dump();
  if (!sighting.contains("age") || !sighting["age"].value("fromFace", false)) {
    GTEST_SKIP() << "the server runs without the age model (scripts/setup.sh models)";
  }
  // The text output names the band and says where it came from. (A second photo of the same
  // bytes makes a second sighting case: sightings are not deduplicated across cases.)
  RunResult text = RunProcess({kCliBin, "--server", *address_, "sighting", "submit",
                               OneFacePhoto().string(), "--place", "Market"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, ::testing::HasSubstr("age estimated from the face: "));
  EXPECT_THAT(text.out, ::testing::HasSubstr("ESTIMATED_AGE"));
  // A volunteer's range wins: no estimate is printed.
  RunResult given = RunProcess({kCliBin, "--server", *address_, "sighting", "submit",
                                OneFacePhoto().string(), "--age", "8-10"});
  ASSERT_EQ(given.exit_code, 0) << given.err;
  EXPECT_THAT(given.out, ::testing::Not(::testing::HasSubstr("age estimated from the face")));
}

TEST_F(CliTest, SightingOfMissingChildListsTheCase) {
  const std::string id = CreateCase("missing", UniqueName("Ana"));
  Json photo = CliJson({"photo", "add", id, OneFacePhoto().string(), "--age", "8"});
  ASSERT_EQ(photo["faces"].size(), 1u) << photo.dump();
  EXPECT_TRUE(photo["faces"][0]["stored"].get<bool>());
  EXPECT_TRUE(photo["photoId"].is_string());

  Json sighting = CliJson({"sighting", "submit", OneFacePhoto().string(), "--seen-at", "2024-01-15",
                           "--place", "Porto", "--age", "8-10", "--top", "5"});
  EXPECT_TRUE(sighting["caseId"].is_string());
  EXPECT_TRUE(HasCandidate(sighting, id)) << sighting.dump();

  Json search = CliJson({"search", OneFacePhoto().string(), "--kind", "missing,found", "--top", "5",
                         "--age", "9-11"});
  EXPECT_TRUE(HasCandidate(search, id)) << search.dump();

  const std::string face_id = photo["faces"][0].value("faceId", "");
  Json by_face = CliJson({"search", "--face", face_id, "--kind", "missing"});
  ASSERT_FALSE(by_face["results"].empty()) << by_face.dump();

  Json compare = CliJson({"compare", OneFacePhoto().string(), OneFacePhoto().string()});
  EXPECT_LT(compare["distance"].get<double>(), 0.1);
  EXPECT_TRUE(compare["possibleMatch"].get<bool>());
}

TEST_F(CliTest, CaseShowListDelete) {
  const std::string name = UniqueName("Bea");
  const std::string id = CreateCase("found", name);
  Json shown = CliJson({"case", "show", id});
  EXPECT_EQ(shown["id"], id);
  EXPECT_EQ(shown["displayName"], name);
  EXPECT_EQ(shown["kind"], "FOUND");
  EXPECT_EQ(shown["sex"], "FEMALE");
  EXPECT_EQ(shown["birthDate"], "2015-03-02");
  EXPECT_EQ(CountCasesNamed("found", name), 1);

  Json deleted = CliJson({"case", "delete", id});
  EXPECT_TRUE(deleted.is_object());
  RunResult gone = Cli({"case", "show", id});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, StartsWith("error: NOT_FOUND: "));
  EXPECT_EQ(CountCasesNamed("found", name), 0);
}

TEST_F(CliTest, CaseExportWritesATarWithTheCaseAndItsPhoto) {
  const std::string name = UniqueName("Exported");
  const std::string id = CreateCase("missing", name);
  Json photo = CliJson({"photo", "add", id, OneFacePhoto().string(), "--age", "8"});
  ASSERT_EQ(photo["faces"].size(), 1u) << photo.dump();
  const std::string out = (*tmp_ / ("export-" + id + ".tar")).string();
  Json exported = CliJson({"case", "export", id, out});
  EXPECT_EQ(exported["caseId"], id);
  EXPECT_EQ(exported["photos"], 1);
  std::ifstream in(out, std::ios::binary);
  const std::string tar((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(static_cast<int64_t>(tar.size()), exported["bytes"].get<int64_t>());
  ASSERT_GT(tar.size(), 1024u);
  EXPECT_EQ(tar.substr(257, 5), "ustar");  // a POSIX tar header
  std::ifstream photo_in(OneFacePhoto(), std::ios::binary);
  const std::string photo_bytes((std::istreambuf_iterator<char>(photo_in)),
                                std::istreambuf_iterator<char>());
  EXPECT_NE(tar.find(photo_bytes), std::string::npos) << "the photo is not in the archive whole";
  EXPECT_NE(tar.find(name), std::string::npos) << "case.json does not name the case";
  EXPECT_FALSE(fs::exists(out + ".part"));
  RunResult missing = Cli({"case", "export", "987654321", out + ".none"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, StartsWith("error: NOT_FOUND: "));
  EXPECT_FALSE(fs::exists(out + ".none"));
}

TEST_F(CliTest, StatsCountMissingCases) {
  CreateCase("missing", UniqueName("Caro"));
  Json stats = CliJson({"stats"});
  int64_t missing = -1;
  for (const Json& k : stats["kinds"]) {
    if (k["kind"] == "MISSING") missing = std::stoll(k["cases"].get<std::string>());
  }
  EXPECT_GE(missing, 1) << stats.dump();
}

TEST_F(CliTest, UnknownCasePrintsCodeAndExitsOne) {
  RunResult r = Cli({"case", "show", "987654321"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("error: NOT_FOUND: "));
  EXPECT_TRUE(r.out.empty());
}

TEST_F(CliTest, OversizePhotoIsRefusedBeforeSending) {
  const fs::path big = *tmp_ / "big.jpg";
  WriteFile(big, std::string(21 * 1024 * 1024, 'x'));
  RunResult r = Cli({"photo", "add", "1", big.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("the limit is 20 MB"));
}

TEST_F(CliTest, BadAgeIsAUsageError) {
  RunResult r = Cli({"search", OneFacePhoto().string(), "--age", "ten"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("expected years as N or MIN-MAX"));
}

TEST_F(CliTest, ImportFolderOnceThenResumeSkipsEverything) {
  const fs::path dir = *tmp_ / "folder";
  fs::create_directories(dir);
  const std::string a = UniqueName("Dora"), b = UniqueName("Eva");
  fs::copy_file(OneFacePhoto(), dir / (a + ".jpg"));
  fs::copy_file(OneFacePhoto(), dir / (b + ".JPG"));
  WriteFile(dir / "notes.txt", "not a photo");

  Json first = CliJson({"import", dir.string(), "--kind", "found"});
  EXPECT_EQ(first["imported"], 2) << first.dump();
  EXPECT_EQ(first["failed"], 0);
  // The run's photo counts: one face in each photo, both sent.
  EXPECT_EQ(first["photosSent"], 2);
  EXPECT_EQ(first["facesFound"], 2);
  EXPECT_EQ(first["photosWithoutFace"], 0);
  EXPECT_EQ(first["photosRefused"], 0);
  EXPECT_GT(first["photosPerSecond"].get<double>(), 0);
  EXPECT_EQ(CountCasesNamed("found", a), 1);

  RunResult again = Cli({"import", dir.string(), "--kind", "found"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("--resume"));

  Json resumed = CliJson({"import", dir.string(), "--kind", "found", "--resume"});
  EXPECT_EQ(resumed["imported"], 0);
  EXPECT_EQ(resumed["skipped"], 2);
  EXPECT_EQ(resumed["photosSent"], 0);
  EXPECT_EQ(CountCasesNamed("found", a), 1);
  EXPECT_EQ(CountCasesNamed("found", b), 1);
}

TEST_F(CliTest, ImportCsvReportsFailuresAndResumesWithoutDuplicates) {
  const fs::path dir = *tmp_ / "csv";
  fs::create_directories(dir / "photos");
  fs::copy_file(OneFacePhoto(), dir / "photos/one.jpg");
  const std::string a = UniqueName("Fia"), b = UniqueName("Gil"), c = UniqueName("Hana");
  const fs::path csv = dir / "cases.csv";
  WriteFile(csv, "name,sex,birth_date,place,event_date,photo,age\n" + a +
                     ",f,2014-05-01,\"Faro, PT\",2023-01-02,photos/one.jpg,8\n" + b +
                     ",m,,Braga,,photos/absent.jpg,\n" + c + ",f,,,,photos/one.jpg,7-9\n");

  // Interrupted after the first row.
  Json first = CliJson({"import", csv.string(), "--kind", "missing", "--limit", "1"});
  EXPECT_EQ(first["imported"], 1) << first.dump();
  EXPECT_EQ(first["remaining"], 2);
  EXPECT_TRUE(fs::exists(csv.string() + ".homeward-import-state.jsonl"));

  // Resumed: the bad path is reported, the third row imported, the first skipped.
  RunResult second = Cli({"import", csv.string(), "--kind", "missing", "--resume"});
  EXPECT_EQ(second.exit_code, 1) << second.err;
  Json summary = Json::parse(second.out, nullptr, false);
  ASSERT_FALSE(summary.is_discarded()) << second.out;
  EXPECT_EQ(summary["skipped"], 1);
  EXPECT_EQ(summary["imported"], 1);
  ASSERT_EQ(summary["failures"].size(), 1u) << summary.dump();
  EXPECT_EQ(summary["failures"][0]["key"], "line 3");
  EXPECT_THAT(summary["failures"][0]["reason"].get<std::string>(), HasSubstr("absent.jpg"));
  EXPECT_THAT(second.err, HasSubstr("absent.jpg"));
  EXPECT_THAT(second.err, HasSubstr("ETA"));

  // The photo appears; resuming imports only that row.
  fs::copy_file(OneFacePhoto(), dir / "photos/absent.jpg");
  Json third = CliJson({"import", csv.string(), "--kind", "missing", "--resume"});
  EXPECT_EQ(third["imported"], 1) << third.dump();
  EXPECT_EQ(third["skipped"], 2);
  EXPECT_EQ(third["failed"], 0);
  for (const std::string& name : {a, b, c}) EXPECT_EQ(CountCasesNamed("missing", name), 1);

  Json row_a;
  for (const Json& cs : third["cases"]) {
    if (cs["name"] == a) row_a = cs;
  }
  Json shown = CliJson({"case", "show", row_a.value("caseId", "")});
  EXPECT_EQ(shown["place"], "Faro, PT");
  EXPECT_EQ(shown["photoCount"], 1);
}

}  // namespace
