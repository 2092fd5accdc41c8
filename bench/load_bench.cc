// load_bench: the reliability load test. Many concurrent clients, for minutes, against the real
// homeward-server binary over a gallery of >= 100k faces, on loopback only.
//
//   1. Prepares the data dir: reuses it when `<data-dir>.populated` records >= --faces faces,
//      else runs `service_bench populate` (synthetic faces, 100 per photo, docs/BENCHMARKS.md).
//   2. Creates two API keys with `homeward-server --add-key` (a volunteer who submits sightings
//      and reads stats, an investigator who searches and reads cases and leads) and starts
//      `homeward-server --listen 127.0.0.1:0` with them; waits for `listening on HOST:PORT`.
//   3. Runs --clients client threads for --duration seconds, closed loop, --clients-per-channel
//      clients sharing one gRPC channel (connection). Each client does one kind of call, taken
//      from --mix (weights apportioned to clients, so the slow image calls cannot crowd out the
//      searches): SubmitSighting and Search by image with real photos, Search by face id,
//      GetCase, ListCases, GetStats, ListLeads. Every call has a deadline. UNAVAILABLE is the
//      server's documented back-pressure: counted apart, the client backs off (jittered,
//      exponential, at most ~1.6 s) and goes on. Any other non-OK code is a failure and is
//      printed with its message.
//   4. Samples the server every --sample-every seconds: VmRSS, VmHWM, threads, open fds, CPU
//      time, /proc/loadavg. Prints the timeline, then per call kind: calls, codes, p50/p99/max
//      latency of the OK calls after the warm-up.
//   5. Stops the clients, drops the channels, samples the idle server, sends SIGTERM and
//      expects exit status 0.
//
// Targets (exit status 1 when one fails): no error other than UNAVAILABLE; every kind of call
// in the mix succeeded at least once; RSS growth < --max-rss-growth % (0: reported, not
// judged) from the first sample after the warm-up to the last sample under load; open fds of
// the idle server after the run <= before the run + --fd-slack (the catalog keeps up to 4 idle
// read connections, opened on demand); the server neither died nor logged an error-level line,
// and exited 0 on SIGTERM.
//
// Usage (OMP_WAIT_POLICY=PASSIVE is set for the server when unset):
//   load_bench [--clients 32] [--duration 300] [--warmup 30] [--data-dir /tmp/hwload/d100k]
//              [--faces 100000] [--mix sighting=5,search_image=3,search_face=12,get_case=5,
//              list_cases=3,stats=2,leads=2] [--clients-per-channel 4] [--sample-every 5]
//              [--max-queue 32] [--workers 0] [--index-factory F] [--folder DIR]...
//              [--seed-file /tmp/lfw_desc.jsonl] [--deadline-image 120] [--deadline 30]
//              [--max-rss-growth 5] [--fd-slack 12] [--log FILE] [--server BIN]
//              [--service-bench BIN]
#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/server_process.h"

namespace {

namespace fs = std::filesystem;
namespace pb = homeward::v1;
using Clock = homeward::bench::Clock;
using homeward::testing::ChildOptions;
using homeward::testing::ChildProcess;
using homeward::bench::ReadFile;
using homeward::bench::ReadPhotos;
using homeward::bench::Seconds;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "load_bench: %s\n", what.c_str());
  std::exit(2);
}

// ---- flags ----------------------------------------------------------------------------------

enum class Op { kSighting, kSearchImage, kSearchFace, kGetCase, kListCases, kStats, kLeads };
constexpr int kOps = 7;
const char* const kOpNames[kOps] = {"sighting",   "search_image", "search_face", "get_case",
                                    "list_cases", "stats",        "leads"};
const char* const kOpRpcs[kOps] = {"SubmitSighting", "Search{image}", "Search{face_id}", "GetCase",
                                   "ListCases",      "GetStats",      "ListLeads"};
bool IsImageOp(int op) { return op == 0 || op == 1; }

struct Flags {
  int clients = 32;
  double duration_s = 300, warmup_s = 30, sample_every_s = 5;
  std::string data_dir = "/tmp/hwload/d100k";
  int64_t faces = 100000;
  std::string mix =
      "sighting=5,search_image=3,search_face=12,get_case=5,list_cases=3,stats=2,leads=2";
  int clients_per_channel = 4;
  int max_queue = 32, workers = 0;
  std::string index_factory;  // "" = the server's default
  std::vector<std::string> folders;
  std::string seed_file = "/tmp/lfw_desc.jsonl";
  double deadline_image_s = 120, deadline_s = 30;
  double max_rss_growth_pct = 5;
  int fd_slack = 12;
  std::string log;
  std::string server = HOMEWARD_SERVER_BINARY;
  std::string service_bench = HOMEWARD_SERVICE_BENCH_BINARY;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--clients")
      f.clients = std::stoi(next());
    else if (a == "--duration")
      f.duration_s = std::stod(next());
    else if (a == "--warmup")
      f.warmup_s = std::stod(next());
    else if (a == "--sample-every")
      f.sample_every_s = std::stod(next());
    else if (a == "--data-dir")
      f.data_dir = next();
    else if (a == "--faces")
      f.faces = std::stoll(next());
    else if (a == "--mix")
      f.mix = next();
    else if (a == "--clients-per-channel")
      f.clients_per_channel = std::stoi(next());
    else if (a == "--max-queue")
      f.max_queue = std::stoi(next());
    else if (a == "--workers")
      f.workers = std::stoi(next());
    else if (a == "--index-factory")
      f.index_factory = next();
    else if (a == "--folder")
      f.folders.push_back(next());
    else if (a == "--seed-file")
      f.seed_file = next();
    else if (a == "--deadline-image")
      f.deadline_image_s = std::stod(next());
    else if (a == "--deadline")
      f.deadline_s = std::stod(next());
    else if (a == "--max-rss-growth")
      f.max_rss_growth_pct = std::stod(next());
    else if (a == "--fd-slack")
      f.fd_slack = std::stoi(next());
    else if (a == "--log")
      f.log = next();
    else if (a == "--server")
      f.server = next();
    else if (a == "--service-bench")
      f.service_bench = next();
    else
      Die("unknown flag " + a + " (see the usage at the top of bench/load_bench.cc)");
  }
  if (f.clients < 1 || f.duration_s <= 0 || f.clients_per_channel < 1 || f.sample_every_s <= 0) {
    Die("--clients, --duration, --clients-per-channel and --sample-every must be positive");
  }
  if (f.warmup_s >= f.duration_s) Die("--warmup must be shorter than --duration");
  if (f.folders.empty()) {
    f.folders = {std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo",
                 "/work/shared/data/faces-small"};
  }
  return f;
}

// "sighting=5,search_face=12,..." -> the op of each client (largest remainder; every op with a
// positive weight gets at least one client when there are enough clients).
std::vector<int> AssignOps(const std::string& mix, int clients) {
  std::vector<double> w(kOps, 0);
  std::stringstream ss(mix);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const int op = static_cast<int>(std::find(kOpNames, kOpNames + kOps, name) - kOpNames);
    if (eq == std::string::npos || op == kOps) Die("--mix: bad item '" + item + "'");
    w[op] = std::stod(item.substr(eq + 1));
    if (w[op] < 0) Die("--mix: negative weight");
  }
  double total = 0;
  int positive = 0;
  for (double x : w) total += x, positive += x > 0;
  if (total <= 0) Die("--mix: no positive weight");
  std::vector<int> n(kOps, 0);
  std::vector<std::pair<double, int>> rest;
  int given = 0;
  for (int op = 0; op < kOps; ++op) {
    const double exact = w[op] / total * clients;
    n[op] = static_cast<int>(exact);
    if (w[op] > 0 && n[op] == 0 && clients >= positive) n[op] = 1;
    given += n[op];
    rest.push_back({exact - n[op], op});
  }
  std::sort(rest.rbegin(), rest.rend());
  for (size_t i = 0; given < clients; i = (i + 1) % rest.size()) {
    if (w[rest[i].second] > 0) ++n[rest[i].second], ++given;
  }
  while (given > clients) {  // the minimum of one took too many: trim the largest
    --*std::max_element(n.begin(), n.end()), --given;
  }
  std::vector<int> out;
  for (int op = 0; op < kOps; ++op) out.insert(out.end(), n[op], op);
  return out;
}

// ---- processes and /proc --------------------------------------------------------------------

// Runs argv to completion; returns its exit status (-1 if it did not exit normally) and stdout.
int RunCapture(const std::vector<std::string>& argv, std::string* out) {
  int pipefd[2];
  if (pipe(pipefd) != 0) Die("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    close(pipefd[0]);
    close(pipefd[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) {
    if (out) out->append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct ProcSample {
  double t = 0;  // seconds since the load started (negative: before)
  int64_t rss_kib = 0, hwm_kib = 0;
  int threads = 0, fds = 0;
  double cpu_s = 0;  // utime + stime of the server
  double load1 = 0;
  int64_t ok = 0, unavailable = 0, errors = 0;  // cumulative client-side counts
  bool alive = true;
};

int64_t StatusField(const std::string& status, const char* key) {
  const size_t at = status.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoll(status.c_str() + at + std::strlen(key), nullptr, 10);
}

ProcSample SampleProcess(pid_t pid) {
  ProcSample s;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream st(dir + "/status");
  if (!st) {
    s.alive = false;
    return s;
  }
  std::stringstream ss;
  ss << st.rdbuf();
  const std::string status = ss.str();
  s.rss_kib = StatusField(status, "VmRSS:");
  s.hwm_kib = StatusField(status, "VmHWM:");
  s.threads = static_cast<int>(StatusField(status, "Threads:"));
  if (DIR* d = opendir((dir + "/fd").c_str())) {
    while (dirent* e = readdir(d)) s.fds += e->d_name[0] != '.';
    closedir(d);
  }
  std::ifstream stat(dir + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close_paren = line.rfind(')');
  if (close_paren != std::string::npos) {
    std::stringstream fields(line.substr(close_paren + 2));
    std::string field;
    std::vector<std::string> v;
    while (fields >> field) v.push_back(field);
    if (v.size() > 13) {  // fields 14 and 15 of stat (utime, stime), from field 3 on here
      s.cpu_s = (std::stod(v[11]) + std::stod(v[12])) / sysconf(_SC_CLK_TCK);
    }
  }
  std::ifstream("/proc/loadavg") >> s.load1;
  // A zombie (exited, not yet reaped) has no VmRSS.
  if (status.find("State:\tZ") != std::string::npos) s.alive = false;
  return s;
}

// ---- the server -----------------------------------------------------------------------------

// The server runs in its own session (and so its own scheduler autogroup): its CPU share is
// not shared with this client, as on separate machines; terminal signals do not reach it.
struct Server {
  ChildProcess child;
  pid_t pid = -1;  // kept after the child is reaped (/proc/<pid> then says it is gone)
  std::string address;
  // The exit code, -1 when a signal ended it.
  int exit_code() const { return child.term_signal() != 0 ? -1 : child.exit_status(); }
};

void StartServer(const Flags& f, const std::string& keys, const std::string& log, Server* s) {
  std::vector<std::string> argv = {f.server,
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--data-dir",
                                   f.data_dir,
                                   "--api-keys",
                                   keys,
                                   "--max-queue",
                                   std::to_string(f.max_queue),
                                   "--workers",
                                   std::to_string(f.workers)};
  if (!f.index_factory.empty()) {
    argv.push_back("--index-factory");
    argv.push_back(f.index_factory);
  }
  if (!std::ofstream(log, std::ios::trunc)) Die("cannot create " + log);
  ChildOptions options;
  options.new_session = true;
  // The child gets OMP_WAIT_POLICY=PASSIVE unless ours says otherwise (main sets it if unset).
  if (const char* omp = std::getenv("OMP_WAIT_POLICY")) options.env = {{"OMP_WAIT_POLICY", omp}};
  if (!s->child.Start(argv, log, /*out=*/"", options)) Die("fork failed");
  s->pid = s->child.pid();
  const auto start = Clock::now();
  for (;;) {
    const std::string text = s->child.NewLog();
    const size_t at = text.find("listening on ");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      const size_t b = at + std::strlen("listening on ");
      s->address = text.substr(b, text.find('\n', at) - b);
      std::printf("server: pid %d at %s, ready after %.1f s (%s)\n", s->pid, s->address.c_str(),
                  Seconds(start), log.c_str());
      return;
    }
    if (!s->child.Running()) Die("the server exited before listening; see " + log);
    if (Seconds(start) > 600) {
      s->child.Signal(SIGKILL);
      Die("the server did not listen within 600 s; see " + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// ---- the data dir and keys ------------------------------------------------------------------

void PrepareData(const Flags& f) {
  const std::string marker = f.data_dir + ".populated";
  int64_t have = 0;
  std::ifstream(marker) >> have;
  if (have >= f.faces && fs::exists(fs::path(f.data_dir) / "catalog.db")) {
    std::printf(
        "data: reusing %s (populated with %lld synthetic faces; earlier runs' sightings "
        "added since)\n",
        f.data_dir.c_str(), static_cast<long long>(have));
    return;
  }
  std::error_code ec;
  fs::remove_all(f.data_dir, ec);
  fs::create_directories(fs::path(f.data_dir).parent_path(), ec);
  std::printf("data: populating %s with %lld synthetic faces (service_bench populate)\n",
              f.data_dir.c_str(), static_cast<long long>(f.faces));
  std::fflush(stdout);
  const auto start = Clock::now();
  std::vector<std::string> argv = {f.service_bench,     "populate",
                                   "--data-dir",        f.data_dir,
                                   "--faces",           std::to_string(f.faces),
                                   "--faces-per-photo", "100",
                                   "--batch",           "200",
                                   "--single",          "0"};
  if (!f.seed_file.empty()) {
    argv.push_back("--seed-file");
    argv.push_back(f.seed_file);
  }
  std::string out;
  if (RunCapture(argv, &out) != 0) Die("service_bench populate failed:\n" + out);
  std::ofstream(marker) << f.faces << "\n";
  std::printf("data: populated in %.0f s\n", Seconds(start));
}

// Creates a key with the real binary (`homeward-server --add-key`); returns the key.
std::string AddKey(const Flags& f, const std::string& file, const std::string& id,
                   const std::string& role) {
  std::string out;
  if (RunCapture({f.server, "--add-key", role, "--key-id", id, "--api-keys", file}, &out) != 0) {
    Die("homeward-server --add-key " + role + " failed");
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}


// ---- the clients ----------------------------------------------------------------------------

struct Record {
  double t;  // start, seconds since the load started
  float latency_ms;
  int8_t op, code;
};

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0}, unavailable{0}, errors{0};
  std::mutex print_mu;
  std::map<std::pair<int, int>, int> printed;  // (op, code) -> errors printed
  Clock::time_point start;
};

struct Target {
  std::vector<std::string> photos;
  std::string vol_key, inv_key;
  int64_t faces = 0, cases = 0;  // ids 1..n exist (dense in a populated catalog)
};

const char* kPlaces[] = {"Lagos", "Kano",           "Nairobi",  "Dhaka",  "Kolkata",
                         "Lima",  "Port-au-Prince", "Kinshasa", "Manila", "Karachi"};

class Client {
 public:
  Client(int index, int op, std::shared_ptr<grpc::Channel> channel, const Target& target,
         const Flags& flags, Shared& shared)
      : index_(index),
        op_(op),
        stub_(pb::Homeward::NewStub(channel)),
        target_(target),
        flags_(flags),
        shared_(shared),
        rng_(1000 + index) {}

  void Run() {
    int backoff = 0;
    while (!shared_.stop) {
      const double t = Seconds(shared_.start);
      const auto t0 = Clock::now();
      const grpc::Status s = Call();
      const float ms = static_cast<float>(Seconds(t0) * 1e3);
      records_.push_back({t, ms, static_cast<int8_t>(op_), static_cast<int8_t>(s.error_code())});
      if (s.ok()) {
        ++shared_.ok;
        backoff = 0;
      } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
        ++shared_.unavailable;
        // The documented answer to back-pressure: retry later, with jittered back-off.
        const int ms_wait =
            (100 << std::min(backoff++, 4)) / 2 +
            static_cast<int>(rng_() % static_cast<uint64_t>(50 << std::min(backoff, 4)));
        std::this_thread::sleep_for(std::chrono::milliseconds(ms_wait));
      } else {
        ++shared_.errors;
        Report(s);
      }
    }
  }

  const std::vector<Record>& records() const { return records_; }

 private:
  std::string RandomDate(int from_year, int years) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", from_year + static_cast<int>(rng_() % years),
                  1 + static_cast<int>(rng_() % 12), 1 + static_cast<int>(rng_() % 28));
    return buf;
  }
  int64_t RandomId(int64_t n) {
    return 1 + static_cast<int64_t>(rng_() % static_cast<uint64_t>(n));
  }
  const std::string& RandomPhoto() { return target_.photos[rng_() % target_.photos.size()]; }

  void Prepare(grpc::ClientContext& ctx, bool image, const std::string& key) {
    const double d = image ? flags_.deadline_image_s : flags_.deadline_s;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(d * 1e3)));
    ctx.AddMetadata("authorization", "Bearer " + key);
  }

  grpc::Status Call() {
    grpc::ClientContext ctx;
    Prepare(ctx, IsImageOp(op_), op_ == 0 || op_ == 5 ? target_.vol_key : target_.inv_key);
    switch (static_cast<Op>(op_)) {
      case Op::kSighting: {
        pb::SubmitSightingRequest req;
        req.set_image(RandomPhoto());
        req.set_seen_on(RandomDate(2024, 2));
        req.set_place(kPlaces[rng_() % 10]);
        req.set_top_k(10);
        pb::SubmitSightingResponse resp;
        return stub_->SubmitSighting(&ctx, req, &resp);
      }
      case Op::kSearchImage: {
        pb::SearchRequest req;
        req.set_image(RandomPhoto());
        req.set_top_k(10);
        pb::SearchResponse resp;
        return stub_->Search(&ctx, req, &resp);
      }
      case Op::kSearchFace: {
        pb::SearchRequest req;
        req.set_face_id(std::to_string(RandomId(target_.faces)));
        req.set_top_k(10);
        switch (rng_() % 4) {  // a quarter each: plain, place, sex + closed, all kinds
          case 1:
            req.mutable_filter()->set_place_contains(kPlaces[rng_() % 10]);
            break;
          case 2:
            req.mutable_filter()->set_sex(static_cast<pb::Sex>(1 + rng_() % 2));
            req.mutable_filter()->set_include_closed(true);
            break;
          case 3:
            req.add_kinds(pb::MISSING);
            req.add_kinds(pb::FOUND);
            req.add_kinds(pb::SIGHTING);
            break;
          default:
            break;
        }
        pb::SearchResponse resp;
        return stub_->Search(&ctx, req, &resp);
      }
      case Op::kGetCase: {
        pb::GetCaseRequest req;
        req.set_id(std::to_string(RandomId(target_.cases)));
        pb::Case resp;
        return stub_->GetCase(&ctx, req, &resp);
      }
      case Op::kListCases: {
        pb::ListCasesRequest req;
        req.set_kind(static_cast<pb::CaseKind>(1 + rng_() % 3));
        if (rng_() % 2) req.set_place_contains(kPlaces[rng_() % 10]);
        if (rng_() % 2) {
          req.set_event_from(RandomDate(2015, 5));
          req.set_event_to("2024-12-31");
        }
        req.set_page_size(50);
        pb::ListCasesResponse resp;
        grpc::Status s = stub_->ListCases(&ctx, req, &resp);
        if (!s.ok() || resp.next_page_token().empty()) return s;
        grpc::ClientContext ctx2;  // one more page, as a client paging through does
        Prepare(ctx2, false, target_.inv_key);
        req.set_page_token(resp.next_page_token());
        return stub_->ListCases(&ctx2, req, &resp);
      }
      case Op::kStats: {
        pb::GetStatsResponse resp;
        return stub_->GetStats(&ctx, pb::GetStatsRequest(), &resp);
      }
      case Op::kLeads: {
        pb::ListLeadsRequest req;
        req.set_page_size(20);
        if (rng_() % 2) req.set_min_confidence(0.6f);
        pb::ListLeadsResponse resp;
        grpc::Status s = stub_->ListLeads(&ctx, req, &resp);
        if (!s.ok() || resp.leads_size() == 0) return s;
        grpc::ClientContext ctx2;  // open the first lead, as a reviewer does
        Prepare(ctx2, false, target_.inv_key);
        pb::GetLeadRequest get;
        get.set_id(resp.leads(0).id());
        pb::Lead lead;
        return stub_->GetLead(&ctx2, get, &lead);
      }
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "load_bench: unknown op");
  }

  void Report(const grpc::Status& s) {
    std::lock_guard<std::mutex> lock(shared_.print_mu);
    int& n = shared_.printed[{op_, s.error_code()}];
    if (++n > 10) return;  // ten of each (op, code) in full; the table counts them all
    std::fprintf(stderr, "ERROR t=%.1fs client %d %s: code %d: %s\n", Seconds(shared_.start),
                 index_, kOpRpcs[op_], static_cast<int>(s.error_code()), s.error_message().c_str());
  }

  const int index_, op_;
  std::unique_ptr<pb::Homeward::Stub> stub_;
  const Target& target_;
  const Flags& flags_;
  Shared& shared_;
  std::mt19937_64 rng_;
  std::vector<Record> records_;
};

// ---- reporting ------------------------------------------------------------------------------

double Percentile(std::vector<float>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

const char* CodeName(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "?";
}

void PrintSample(const ProcSample& s, const ProcSample* prev) {
  const double dt = prev ? s.t - prev->t : 0;
  const double cpu = prev && dt > 0 ? 100 * (s.cpu_s - prev->cpu_s) / dt : 0;
  const double rate = prev && dt > 0 ? (s.ok - prev->ok) / dt : 0;
  std::printf("| %6.0f | %7.1f | %7.1f | %4d | %3d | %5.0f%% | %5.2f | %7.1f | %6lld | %5lld |\n",
              s.t, s.rss_kib / 1024.0, s.hwm_kib / 1024.0, s.threads, s.fds, cpu, s.load1, rate,
              static_cast<long long>(s.unavailable), static_cast<long long>(s.errors));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  signal(SIGPIPE, SIG_IGN);
  std::printf(
      "load_bench: %d clients for %.0f s (warm-up %.0f s), mix %s, %d clients per channel, "
      "server --max-queue %d --workers %d%s%s\n",
      f.clients, f.duration_s, f.warmup_s, f.mix.c_str(), f.clients_per_channel, f.max_queue,
      f.workers, f.index_factory.empty() ? "" : " --index-factory ", f.index_factory.c_str());
  PrepareData(f);

  char tmpl[] = "/tmp/load_bench_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  const std::string tmp = tmpl;
  const std::string keys = tmp + "/keys.jsonl";
  Target target;
  target.vol_key = AddKey(f, keys, "load-volunteer", "volunteer");
  target.inv_key = AddKey(f, keys, "load-investigator", "investigator");
  target.photos = ReadPhotos(f.folders);
  if (target.photos.empty()) Die("no photos under --folder");
  int64_t photo_bytes = 0;
  for (const auto& p : target.photos) photo_bytes += static_cast<int64_t>(p.size());
  std::printf("photos: %zu real photos (%.0f KiB average)\n", target.photos.size(),
              photo_bytes / 1024.0 / target.photos.size());

  const std::string log = f.log.empty() ? tmp + "/server.log" : f.log;
  Server server;
  StartServer(f, keys, log, &server);
  int failures = 0;
  auto fail = [&failures](const std::string& what) {
    std::printf("FAIL: %s\n", what.c_str());
    ++failures;
  };

  // The gallery as the server sees it: the id ranges the clients draw from.
  grpc::ChannelArguments probe_args;
  probe_args.SetInt("homeward.load.channel", -1);
  auto probe = pb::Homeward::NewStub(
      grpc::CreateCustomChannel(server.address, grpc::InsecureChannelCredentials(), probe_args));
  auto stats_now = [&](pb::GetStatsResponse* stats) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    // Totals are for investigators and admins (a volunteer sees its own cases' counts).
    ctx.AddMetadata("authorization", "Bearer " + target.inv_key);
    return probe->GetStats(&ctx, pb::GetStatsRequest(), stats);
  };
  pb::GetStatsResponse stats;
  if (grpc::Status s = stats_now(&stats); !s.ok()) Die("GetStats: " + s.error_message());
  std::printf("gallery: index %s, %lld indexed;", stats.index_type().c_str(),
              static_cast<long long>(stats.index_size()));
  for (const auto& k : stats.kinds()) {
    std::printf(" %s %lld cases / %lld faces;", pb::CaseKind_Name(k.kind()).c_str(),
                static_cast<long long>(k.cases()), static_cast<long long>(k.faces()));
    target.faces += k.faces();
    target.cases += k.cases();
  }
  std::printf(" total %lld faces\n", static_cast<long long>(target.faces));
  if (target.faces < f.faces) fail("the gallery holds fewer faces than --faces");
  probe.reset();
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let the probe connection close
  const ProcSample before = SampleProcess(server.pid);

  // Clients and their channels.
  const std::vector<int> ops = AssignOps(f.mix, f.clients);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c * f.clients_per_channel < f.clients; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("homeward.load.channel", c);  // distinct args: one connection per channel
    args.SetMaxReceiveMessageSize(64 << 20);
    channels.push_back(
        grpc::CreateCustomChannel(server.address, grpc::InsecureChannelCredentials(), args));
  }
  Shared shared;
  std::vector<std::unique_ptr<Client>> clients;
  int per_op[kOps] = {};
  for (int i = 0; i < f.clients; ++i) {
    ++per_op[ops[i]];
    clients.push_back(std::make_unique<Client>(i, ops[i], channels[i / f.clients_per_channel],
                                               target, f, shared));
  }
  std::printf("clients:");
  for (int op = 0; op < kOps; ++op) std::printf(" %s %d", kOpNames[op], per_op[op]);
  std::printf("; %zu channels\n", channels.size());
  std::printf("idle before the load: RSS %.1f MiB, %d fds, %d threads\n\n", before.rss_kib / 1024.0,
              before.fds, before.threads);
  std::printf(
      "| t s | RSS MiB | HWM MiB | thr | fds | srv CPU | load1 | OK/s | UNAV | errors |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::fflush(stdout);

  shared.start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& c : clients) threads.emplace_back([&c] { c->Run(); });

  // Sample until the duration is over or the server dies.
  std::vector<ProcSample> samples;
  bool died = false;
  for (int k = 0;; ++k) {
    ProcSample s = SampleProcess(server.pid);
    s.t = Seconds(shared.start);
    s.ok = shared.ok;
    s.unavailable = shared.unavailable;
    s.errors = shared.errors;
    if (!s.alive || !server.child.Running()) {
      died = true;
      break;
    }
    PrintSample(s, samples.empty() ? nullptr : &samples.back());
    samples.push_back(s);
    if (s.t >= f.duration_s) break;
    const double next = std::min(f.duration_s, (k + 1) * f.sample_every_s);
    std::this_thread::sleep_for(
        std::chrono::duration<double>(std::max(0.0, next - Seconds(shared.start))));
  }
  shared.stop = true;
  const auto stop_at = Clock::now();
  for (auto& t : threads) t.join();
  const double drain_s = Seconds(stop_at);
  const double run_s = Seconds(shared.start);
  if (died) {
    server.child.Wait(1e9);
    fail("the server died during the load (exit " + std::to_string(server.exit_code()) +
         ", signal " + std::to_string(server.child.term_signal()) + "); see " + log);
  }

  // ---- per-op table (OK latencies after the warm-up) ----
  std::vector<Record> all;
  for (const auto& c : clients) all.insert(all.end(), c->records().begin(), c->records().end());
  const double measured_s = samples.empty() ? 0 : std::max(1e-9, samples.back().t - f.warmup_s);
  std::printf(
      "\nafter the %.0f s warm-up (%.0f s measured; OK latencies; clients stopped, last "
      "calls drained in %.1f s):\n\n",
      f.warmup_s, measured_s, drain_s);
  std::printf(
      "| call | clients | calls | OK | UNAVAILABLE | other errors | OK/s | p50 ms | p99 ms "
      "| max ms | codes |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  int64_t warm_calls = 0, warm_errors = 0, total_errors = 0, total_ok = 0;
  for (int op = 0; op < kOps; ++op) {
    if (per_op[op] == 0) continue;
    std::vector<float> lat;
    std::map<int, int64_t> codes;
    int64_t calls = 0, ok = 0, unav = 0, err = 0, ok_all = 0;
    for (const Record& r : all) {
      if (r.op != op) continue;
      ok_all += r.code == 0;
      const bool error = r.code != 0 && r.code != grpc::StatusCode::UNAVAILABLE;
      total_errors += error;
      if (r.t < f.warmup_s) {
        ++warm_calls;
        warm_errors += error;
        continue;
      }
      ++calls;
      ++codes[r.code];
      if (r.code == 0)
        ++ok, lat.push_back(r.latency_ms);
      else if (r.code == grpc::StatusCode::UNAVAILABLE)
        ++unav;
      else
        ++err;
    }
    total_ok += ok_all;
    std::string code_text;
    for (const auto& [code, n] : codes) {
      code_text +=
          (code_text.empty() ? "" : " ") + std::string(CodeName(code)) + ":" + std::to_string(n);
    }
    const double p50 = Percentile(lat, 0.5), p99 = Percentile(lat, 0.99);
    const double mx = lat.empty() ? 0 : lat.back();
    std::printf("| %s | %d | %lld | %lld | %lld | %lld | %.2f | %.1f | %.1f | %.1f | %s |\n",
                kOpRpcs[op], per_op[op], static_cast<long long>(calls), static_cast<long long>(ok),
                static_cast<long long>(unav), static_cast<long long>(err), ok / measured_s, p50,
                p99, mx, code_text.c_str());
    if (ok_all == 0) fail(std::string(kOpRpcs[op]) + " never succeeded");
  }
  std::printf(
      "\nwarm-up: %lld calls, %lld errors. Whole run: %lld OK, %lld UNAVAILABLE, %lld "
      "other errors in %.0f s\n",
      static_cast<long long>(warm_calls), static_cast<long long>(warm_errors),
      static_cast<long long>(total_ok), static_cast<long long>(shared.unavailable.load()),
      static_cast<long long>(total_errors), run_s);
  if (total_errors > 0)
    fail(std::to_string(total_errors) + " calls failed with codes other than UNAVAILABLE");

  // ---- RSS, fds, load ----
  clients.clear();
  channels.clear();
  std::this_thread::sleep_for(std::chrono::seconds(5));  // connections close, the pool idles
  const ProcSample after = SampleProcess(server.pid);
  const ProcSample* first = nullptr;
  for (const auto& s : samples) {
    if (s.t >= f.warmup_s) {
      first = &s;
      break;
    }
  }
  double load_min = 1e9, load_max = 0, load_sum = 0;
  int fd_min = 1 << 30, fd_max = 0;
  for (const auto& s : samples) {
    load_min = std::min(load_min, s.load1), load_max = std::max(load_max, s.load1);
    load_sum += s.load1;
    fd_min = std::min(fd_min, s.fds), fd_max = std::max(fd_max, s.fds);
  }
  std::printf("\nload average (1 min) during the run: min %.2f, mean %.2f, max %.2f on %u cores\n",
              load_min, samples.empty() ? 0 : load_sum / samples.size(), load_max,
              std::thread::hardware_concurrency());
  if (first && !samples.empty() && !died) {
    const ProcSample& last = samples.back();
    const double growth = 100.0 * (last.rss_kib - first->rss_kib) / first->rss_kib;
    std::printf(
        "RSS: idle before %.1f MiB; first sample after warm-up (t=%.0f s) %.1f MiB; last "
        "(t=%.0f s) %.1f MiB; growth %+.2f%% (%s); peak (VmHWM) %.1f MiB; idle after "
        "%.1f MiB\n",
        before.rss_kib / 1024.0, first->t, first->rss_kib / 1024.0, last.t, last.rss_kib / 1024.0,
        growth,
        f.max_rss_growth_pct > 0
            ? ("target < " + std::to_string(static_cast<int>(f.max_rss_growth_pct)) + "%").c_str()
            : "not judged",
        last.hwm_kib / 1024.0, after.rss_kib / 1024.0);
    if (f.max_rss_growth_pct > 0 && growth >= f.max_rss_growth_pct) {
      fail("RSS grew by more than the target");
    }
    std::printf(
        "fds: idle before %d; during the load min %d, max %d, last %d; idle after %d "
        "(target <= before + %d); threads before %d, after %d\n",
        before.fds, fd_min, fd_max, last.fds, after.fds, f.fd_slack, before.threads, after.threads);
    if (after.fds > before.fds + f.fd_slack) fail("open fds grew: a descriptor leak?");
  } else if (!died) {
    fail("no sample after the warm-up: make --duration longer");
  }

  // ---- shutdown ----
  if (!died) {
    const auto t0 = Clock::now();
    server.child.Signal(SIGTERM);
    bool exited = false;
    while (!(exited = !server.child.Running()) && Seconds(t0) < 120) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!exited) {
      server.child.Signal(SIGKILL);
      server.child.Wait(1e9);
      fail("the server did not exit within 120 s of SIGTERM");
    } else {
      std::printf("shutdown: SIGTERM -> exit status %d after %.1f s\n", server.exit_code(),
                  Seconds(t0));
      if (server.exit_code() != 0) fail("the server's exit status was not 0");
    }
  }
  // Error-level lines in the server's log (spdlog pattern "<time> <level> <message>").
  {
    std::ifstream in(log);
    std::string line;
    int64_t errors = 0, lines = 0;
    while (std::getline(in, line)) {
      ++lines;
      if (line.find(" error ") != std::string::npos ||
          line.find(" critical ") != std::string::npos) {
        if (++errors <= 10) std::printf("server log: %s\n", line.c_str());
      }
    }
    std::printf("server log: %lld lines, %lld at level error/critical\n",
                static_cast<long long>(lines), static_cast<long long>(errors));
    if (errors > 0) fail("the server logged errors");
  }
  std::printf("\n%s\n",
              failures == 0 ? "PASS: every target met" : "FAIL: see the FAIL lines above");
  if (failures == 0 && f.log.empty())
    fs::remove_all(tmp);
  else
    std::printf("kept %s (keys, server log)\n", tmp.c_str());
  return failures == 0 ? 0 : 1;
}
