// multi_server_bench: several real homeward-server processes on one real PostgreSQL catalog
// (issue 14). It starts PostgreSQL 15 itself (tests/postgres_server.h: initdb into a temp dir as
// the `postgres` user, a free loopback port) and the servers as children
// (tests/server_process.h, --insecure-dev, loopback ports), and prints tables:
//
//   lag     Visibility and deletion lag between two servers A and B on one database, at each
//           --follow-ms. A trial: CreateCase + AddPhoto through A (the same real photo as the
//           base case's, so the new face is at distance 0 from the base face); from AddPhoto's
//           reply, B is asked Search{face_id = base face, kinds MISSING} every --poll-ms until
//           the new case is a candidate (visibility lag); then DeleteCase through A and B is
//           polled until the case is gone from its candidates (deletion lag). Each trial starts
//           after a random pause of 0..follow-ms, so trials sample every phase of B's follow
//           tick. Both cases are MISSING: same collection, no cross-match lead.
//   ingest  AddPhoto throughput (photos/s) of real photos (distinct LFW files, one MISSING case
//           per client) with --clients concurrent clients: one server on the embedded SQLite
//           catalog, one server on PostgreSQL, two servers on one PostgreSQL database (clients
//           split between them). Each configuration starts from an empty catalog; the
//           configurations take turns over --reps rounds. Also the servers' CPU seconds per
//           photo (from /proc), which is what a 2-core machine caps.
//   search  Search{face_id} latency over gRPC at each --faces size, a SQLite-catalog server next
//           to a PostgreSQL-catalog server holding the same synthetic faces (service_bench
//           populate, the same seeded generator, so the same face ids and descriptors), both
//           running at once, queries interleaved one by one (alternating which goes first).
//           The first start of each server builds its indexes (IVF1024,Flat training at 1M).
//   all     lag, ingest and search, in that order.
//   smoke   lag (3 trials at --follow-ms 100) and ingest (6 photos, 2 clients, PostgreSQL
//           configurations only): seconds; ctest's multi_server_smoke.
//
// Exit status 0; 1 when a call failed or a lag trial timed out (--timeout-s); 77 when
// postgresql-15 is not installed (nothing can be measured).
//
// Usage (OMP_WAIT_POLICY=PASSIVE is set for the servers):
//   multi_server_bench lag    [--follow-ms 500,100] [--trials 30] [--poll-ms 5] [--photo F]
//   multi_server_bench ingest [--photos 120] [--clients 4] [--reps 2] [--workers 0]
//                             [--folder /work/shared/data/lfw-view1]
//   multi_server_bench search [--faces 100000,1000000] [--queries 400]
//                             [--seed-file /tmp/lfw_desc.jsonl] [--work-dir /tmp]
//                             [--index-factory F] [--keep]
//   common: [--server BIN] [--service-bench BIN] [--timeout-s 30] [--verbose]
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/postgres_server.h"
#include "tests/server_process.h"

namespace {

namespace fs = std::filesystem;
namespace pb = homeward::v1;
using Clock = homeward::bench::Clock;
using homeward::bench::FlagValue;
using homeward::bench::ReadFile;
using homeward::bench::Seconds;
using homeward::testing::MakeTempDirOrDie;
using homeward::testing::PostgresServer;
using homeward::testing::ServerOptions;
using homeward::testing::ServerProcess;
using Stub = pb::Homeward::Stub;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "multi_server_bench: %s\n", what.c_str());
  std::exit(1);
}

// ---- flags ----------------------------------------------------------------------------------

struct Flags {
  std::string command;
  std::vector<int> follow_ms = {500, 100};
  int trials = 30, poll_ms = 5;
  std::string photo;  // lag: "" = the first LFW photo
  int photos = 120, clients = 4, reps = 2, workers = 0;
  std::string folder = "/work/shared/data/lfw-view1";
  std::vector<int64_t> faces = {100000, 1000000};
  int queries = 400;
  std::string seed_file = "/tmp/lfw_desc.jsonl", work_dir = "/tmp", index_factory;
  bool keep = false, verbose = false, smoke = false;
  double timeout_s = 30;
  std::string server = HOMEWARD_SERVER_BINARY;
  std::string service_bench = HOMEWARD_SERVICE_BENCH_BINARY;
};

template <typename T>
std::vector<T> ParseList(const std::string& s) {
  std::vector<T> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(static_cast<T>(std::stoll(item)));
  return out;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: multi_server_bench lag|ingest|search|all|smoke [flags] (see the top of "
                 "bench/multi_server_bench.cc)\n");
    std::exit(2);
  }
  f.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return FlagValue(argc, argv, &i); };
    if (a == "--follow-ms")
      f.follow_ms = ParseList<int>(next());
    else if (a == "--trials")
      f.trials = std::stoi(next());
    else if (a == "--poll-ms")
      f.poll_ms = std::stoi(next());
    else if (a == "--photo")
      f.photo = next();
    else if (a == "--photos")
      f.photos = std::stoi(next());
    else if (a == "--clients")
      f.clients = std::stoi(next());
    else if (a == "--reps")
      f.reps = std::stoi(next());
    else if (a == "--workers")
      f.workers = std::stoi(next());
    else if (a == "--folder")
      f.folder = next();
    else if (a == "--faces")
      f.faces = ParseList<int64_t>(next());
    else if (a == "--queries")
      f.queries = std::stoi(next());
    else if (a == "--seed-file")
      f.seed_file = next();
    else if (a == "--work-dir")
      f.work_dir = next();
    else if (a == "--index-factory")
      f.index_factory = next();
    else if (a == "--keep")
      f.keep = true;
    else if (a == "--verbose")
      f.verbose = true;
    else if (a == "--timeout-s")
      f.timeout_s = std::stod(next());
    else if (a == "--server")
      f.server = next();
    else if (a == "--service-bench")
      f.service_bench = next();
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (f.command == "smoke") {
    f.smoke = true;
    f.follow_ms = {100};
    f.trials = 3;
    f.photos = 6;
    f.clients = 2;
    f.reps = 1;
  }
  if (f.trials < 1 || f.poll_ms < 1 || f.photos < 1 || f.clients < 1 || f.reps < 1 ||
      f.queries < 1) {
    Die("--trials, --poll-ms, --photos, --clients, --reps and --queries must be positive");
  }
  return f;
}

// ---- helpers --------------------------------------------------------------------------------

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// utime + stime of a process, seconds (0 when it is gone).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::stringstream fields(line.substr(paren + 2));
  std::vector<std::string> v;
  for (std::string s; fields >> s;) v.push_back(s);
  if (v.size() < 13) return 0;
  return (std::stod(v[11]) + std::stod(v[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The first `n` .jpg files under `folder`, in path order. With a `homeward embed --json` file
// (`seed_file`, one line per detected face with "path" and "faces"), only photos it lists with
// exactly one face: every AddPhoto then stores one face (LFW has photos where the detector finds
// none or several).
std::vector<std::string> FirstPhotos(const std::string& folder, int n,
                                     const std::string& seed_file = "") {
  std::set<std::string> single;
  {
    std::ifstream in(seed_file);
    for (std::string line; std::getline(in, line);) {
      const size_t at = line.find("\"path\":\"");
      if (at == std::string::npos || line.find("\"faces\":1,") == std::string::npos) continue;
      const size_t b = at + 8;
      single.insert(line.substr(b, line.find('"', b) - b));
    }
  }
  std::vector<std::string> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string ext = it->path().extension().string();
    if (it->is_regular_file(ec) && (ext == ".jpg" || ext == ".jpeg") &&
        (single.empty() || single.count(it->path().string()))) {
      paths.push_back(it->path().string());
    }
  }
  std::sort(paths.begin(), paths.end());
  if (static_cast<int>(paths.size()) > n) paths.resize(n);
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(ReadFile(p));
  return out;
}

std::unique_ptr<Stub> NewStub(const std::string& address, int channel) {
  grpc::ChannelArguments args;
  args.SetInt("homeward.bench.channel", channel);  // distinct args: one connection each
  args.SetMaxReceiveMessageSize(64 << 20);
  return pb::Homeward::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

template <typename Req, typename Resp>
grpc::Status Call(Stub* stub, grpc::Status (Stub::*m)(grpc::ClientContext*, const Req&, Resp*),
                  const Req& req, Resp* resp, double deadline_s = 120) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(deadline_s * 1e3)));
  return (stub->*m)(&ctx, req, resp);
}

void CheckOk(const grpc::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + std::to_string(s.error_code()) + " " + s.error_message());
}

std::string CreateCase(Stub* stub, pb::CaseKind kind, const std::string& name) {
  pb::CreateCaseRequest req;
  req.mutable_case_()->set_kind(kind);
  req.mutable_case_()->set_display_name(name);
  pb::Case created;
  CheckOk(Call(stub, &Stub::CreateCase, req, &created), "CreateCase");
  return created.id();
}

// AddPhoto with the first detected face as the child's; returns the reply.
grpc::Status AddPhoto(Stub* stub, const std::string& case_id, const std::string& image,
                      pb::AddPhotoResponse* resp) {
  pb::AddPhotoRequest req;
  req.set_case_id(case_id);
  req.set_image(image);
  req.set_face_index(0);
  req.set_has_face_index(true);
  return Call(stub, &Stub::AddPhoto, req, resp);
}

std::string StoredFaceId(const pb::AddPhotoResponse& r) {
  for (const auto& f : r.faces()) {
    if (f.stored()) return f.face_id();
  }
  return "";
}

// The PostgreSQL server of this run: started on first use, stopped at exit.
PostgresServer* Postgres() {
  static PostgresServer* pg = [] {
    const auto start = Clock::now();
    auto s = PostgresServer::Shared();
    if (!s.ok()) Die("PostgreSQL: " + s.status().ToString());
    std::printf(
        "PostgreSQL 15: initdb + start on 127.0.0.1:%d in %.1f s (default settings, "
        "fsync and synchronous_commit on)\n",
        (*s)->port(), Seconds(start));
    return *s;
  }();
  return pg;
}

std::string NewDatabaseUrl() {
  auto db = Postgres()->CreateDatabase();
  if (!db.ok()) Die("CREATE DATABASE: " + db.status().ToString());
  return Postgres()->Url(*db);
}

// A homeward-server child in a fresh temp dir (removed by the destructor unless --keep).
struct Server {
  // `data_dir`: "" = <dir>/data.
  Server(const Flags& f, const std::string& name, std::vector<std::string> flags,
         const std::string& data_dir = "", int timeout_s = 300)
      : dir(MakeTempDirOrDie("hw_msbench_" + name + "_")), process(f.server, dir), keep(f.keep) {
    ServerOptions o;
    o.insecure_dev = true;
    o.flags = std::move(flags);
    o.timeout_s = timeout_s;
    o.data_dir = data_dir;
    if (f.workers > 0) o.flags.insert(o.flags.end(), {"--workers", std::to_string(f.workers)});
    if (!f.index_factory.empty())
      o.flags.insert(o.flags.end(), {"--index-factory", f.index_factory});
    std::string error;
    if (!process.Start(o, &error)) Die("server " + name + ": " + error);
    if (f.verbose) {
      std::printf("  server %s: pid %d at %s, ready after %.1f s (%s)\n", name.c_str(),
                  process.pid(), process.address().c_str(), process.ready_seconds(), dir.c_str());
    }
  }
  ~Server() {
    if (process.Stop() != 0) std::fprintf(stderr, "server in %s did not exit 0\n", dir.c_str());
    std::error_code ec;
    if (!keep) fs::remove_all(dir, ec);
  }
  std::string dir;
  ServerProcess process;
  bool keep;
};

int failures = 0;

// ---- lag ------------------------------------------------------------------------------------

struct LagResult {
  int follow_ms = 0;
  std::vector<double> visible_ms, gone_ms, add_ms, delete_ms;
  std::vector<int> polls;
  int timeouts = 0;
};

// True when `case_id` is among B's candidates for the base face.
bool CandidateOf(Stub* b, const std::string& base_face, const std::string& case_id) {
  pb::SearchRequest req;
  req.set_face_id(base_face);
  req.add_kinds(pb::MISSING);
  req.set_top_k(10);
  pb::SearchResponse resp;
  CheckOk(Call(b, &Stub::Search, req, &resp, 30), "Search on B");
  for (const auto& r : resp.results())
    for (const auto& c : r.candidates())
      if (c.case_().id() == case_id) return true;
  return false;
}

// Polls until CandidateOf(...) == want; returns ms since `since`, or -1 after the timeout.
double PollUntil(const Flags& f, Stub* b, const std::string& base_face, const std::string& id,
                 bool want, Clock::time_point since, int* polls) {
  for (*polls = 1;; ++*polls) {
    if (CandidateOf(b, base_face, id) == want) return Seconds(since) * 1e3;
    if (Seconds(since) > f.timeout_s) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(f.poll_ms));
  }
}

LagResult RunLag(const Flags& f, int follow_ms, const std::string& photo) {
  LagResult r;
  r.follow_ms = follow_ms;
  const std::string url = NewDatabaseUrl();
  const std::vector<std::string> flags = {"--catalog", url, "--follow-ms",
                                          std::to_string(follow_ms)};
  Server a(f, "lagA", flags), b(f, "lagB", flags);
  auto sa = NewStub(a.process.address(), 0), sb = NewStub(b.process.address(), 1);
  const std::string base_case = CreateCase(sa.get(), pb::MISSING, "lag base");
  pb::AddPhotoResponse added;
  CheckOk(AddPhoto(sa.get(), base_case, photo, &added), "AddPhoto (base)");
  const std::string base_face = StoredFaceId(added);
  if (base_face.empty()) Die("the lag photo has no stored face: use --photo");
  std::mt19937_64 rng(follow_ms);
  for (int t = 0; t < f.trials; ++t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (follow_ms + 1)));
    const std::string id = CreateCase(sa.get(), pb::MISSING, "lag trial " + std::to_string(t));
    const auto t0 = Clock::now();
    pb::AddPhotoResponse trial;
    CheckOk(AddPhoto(sa.get(), id, photo, &trial), "AddPhoto (trial)");
    r.add_ms.push_back(Seconds(t0) * 1e3);
    const auto acked = Clock::now();
    int polls = 0;
    const double vis = PollUntil(f, sb.get(), base_face, id, true, acked, &polls);
    r.polls.push_back(polls);
    if (vis < 0) {
      ++r.timeouts;
    } else {
      r.visible_ms.push_back(vis);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (follow_ms + 1)));
    const auto d0 = Clock::now();
    pb::DeleteCaseRequest del;
    del.set_id(id);
    pb::DeleteCaseResponse deleted;
    CheckOk(Call(sa.get(), &Stub::DeleteCase, del, &deleted), "DeleteCase");
    r.delete_ms.push_back(Seconds(d0) * 1e3);
    const double gone = PollUntil(f, sb.get(), base_face, id, false, Clock::now(), &polls);
    if (gone < 0) {
      ++r.timeouts;
    } else {
      r.gone_ms.push_back(gone);
    }
    if (f.verbose) std::printf("  trial %d: visible %.1f ms, gone %.1f ms\n", t, vis, gone);
  }
  failures += r.timeouts;
  return r;
}

void Lag(const Flags& f) {
  std::string photo = f.photo.empty() ? "" : ReadFile(f.photo);
  if (f.photo.empty()) {
    auto first = FirstPhotos(f.folder, 1);
    if (first.empty()) Die("no photo under " + f.folder + " (give --photo)");
    photo = first[0];
  }
  if (photo.empty()) Die("cannot read " + f.photo);
  std::vector<LagResult> results;
  for (int ms : f.follow_ms) results.push_back(RunLag(f, ms, photo));
  std::printf(
      "\nlag: two servers A and B on one PostgreSQL database; write through A, poll B's "
      "Search{face_id} every %d ms; %d trials per row; ms from A's reply\n\n",
      f.poll_ms, f.trials);
  std::printf(
      "| --follow-ms | visible on B p50 | p99 | max | gone from B p50 | p99 | max | "
      "AddPhoto on A p50 | DeleteCase on A p50 | timeouts |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results) {
    auto mx = [](const std::vector<double>& v) {
      return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
    };
    std::printf("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %d |\n",
                r.follow_ms, Percentile(r.visible_ms, 0.5), Percentile(r.visible_ms, 0.99),
                mx(r.visible_ms), Percentile(r.gone_ms, 0.5), Percentile(r.gone_ms, 0.99),
                mx(r.gone_ms), Percentile(r.add_ms, 0.5), Percentile(r.delete_ms, 0.5), r.timeouts);
  }
  if (results.size() >= 2) {
    std::printf("\nvisibility p50 ratio (--follow-ms %d / %d): %.2f\n", results[0].follow_ms,
                results[1].follow_ms,
                Percentile(results[0].visible_ms, 0.5) /
                    std::max(1e-9, Percentile(results[1].visible_ms, 0.5)));
  }
  std::fflush(stdout);
}

// ---- ingest ---------------------------------------------------------------------------------

struct IngestResult {
  std::string name;
  double seconds = 0, server_cpu_s = 0;
  int photos = 0, errors = 0;
  std::vector<double> latency_ms;
};

// `servers` share the clients round-robin; each client adds photos to its own MISSING case.
IngestResult RunIngest(const Flags& f, const std::string& name, std::vector<Server*> servers,
                       const std::vector<std::string>& photos) {
  IngestResult r;
  r.name = name;
  std::vector<std::unique_ptr<Stub>> stubs;
  std::vector<std::string> cases;
  for (int c = 0; c < f.clients; ++c) {
    stubs.push_back(NewStub(servers[c % servers.size()]->process.address(), c));
    cases.push_back(CreateCase(stubs.back().get(), pb::MISSING, "ingest " + std::to_string(c)));
  }
  std::vector<double> cpu0;
  for (Server* s : servers) cpu0.push_back(CpuSeconds(s->process.pid()));
  std::atomic<int> next{0}, errors{0};
  std::vector<std::vector<double>> lat(f.clients);
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < f.clients; ++c) {
    threads.emplace_back([&, c] {
      for (int i; (i = next++) < static_cast<int>(photos.size());) {
        const auto t0 = Clock::now();
        pb::AddPhotoResponse resp;
        grpc::Status s = AddPhoto(stubs[c].get(), cases[c], photos[i], &resp);
        if (!s.ok()) {
          if (errors++ < 5) std::fprintf(stderr, "AddPhoto: %s\n", s.error_message().c_str());
          continue;
        }
        lat[c].push_back(Seconds(t0) * 1e3);
      }
    });
  }
  for (auto& t : threads) t.join();
  r.seconds = Seconds(start);
  for (size_t i = 0; i < servers.size(); ++i) {
    r.server_cpu_s += CpuSeconds(servers[i]->process.pid()) - cpu0[i];
  }
  r.photos = static_cast<int>(photos.size()) - errors;
  r.errors = errors;
  for (const auto& v : lat) r.latency_ms.insert(r.latency_ms.end(), v.begin(), v.end());
  failures += r.errors;
  return r;
}

void Ingest(const Flags& f) {
  const bool by_seeds = fs::exists(f.seed_file);
  const std::vector<std::string> photos =
      FirstPhotos(f.folder, f.photos, by_seeds ? f.seed_file : "");
  if (static_cast<int>(photos.size()) < f.photos) Die("too few .jpg under " + f.folder);
  // Configurations: {name, servers, catalog}.
  enum Config { kSqlite, kPg1, kPg2 };
  std::vector<Config> configs = {kSqlite, kPg1, kPg2};
  if (f.smoke) configs = {kPg1, kPg2};
  std::vector<std::vector<IngestResult>> results(3);
  for (int rep = 0; rep < f.reps; ++rep) {
    // Alternate the order each round so that neither side always runs first.
    std::vector<Config> order = configs;
    if (rep % 2 == 1) std::reverse(order.begin(), order.end());
    for (Config c : order) {
      if (c == kSqlite) {
        Server s(f, "ingestS", {});
        results[c].push_back(RunIngest(f, "1 server, SQLite (embedded)", {&s}, photos));
      } else {
        const std::string url = NewDatabaseUrl();
        const std::vector<std::string> flags = {"--catalog", url};
        Server a(f, "ingestA", flags);
        if (c == kPg1) {
          results[c].push_back(RunIngest(f, "1 server, PostgreSQL", {&a}, photos));
        } else {
          Server b(f, "ingestB", flags);
          results[c].push_back(RunIngest(f, "2 servers, one PostgreSQL", {&a, &b}, photos));
        }
      }
      const IngestResult& last = results[c].back();
      if (f.verbose) {
        std::printf("  round %d %s: %.2f photos/s\n", rep + 1, last.name.c_str(),
                    last.photos / last.seconds);
      }
    }
  }
  std::printf(
      "\ningest: AddPhoto of %zu distinct real photos (first .jpg files of %s%s), %d "
      "clients (split across the servers), %d round(s), configurations in alternating "
      "order\n\n",
      photos.size(), f.folder.c_str(), by_seeds ? " with one face in the seed file" : "", f.clients,
      f.reps);
  std::printf(
      "| configuration | photos/s (each round) | photos/s mean | vs 1 server SQLite | "
      "AddPhoto p50 ms | p99 ms | server CPU s per photo | errors |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|\n");
  double base = 0;
  for (Config c : {kSqlite, kPg1, kPg2}) {
    if (results[c].empty()) continue;
    std::string each;
    double sum = 0, cpu = 0;
    int n = 0, errors = 0;
    std::vector<double> lat;
    for (const auto& r : results[c]) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%s%.2f", each.empty() ? "" : ", ", r.photos / r.seconds);
      each += buf;
      sum += r.photos / r.seconds;
      cpu += r.server_cpu_s;
      n += r.photos;
      errors += r.errors;
      lat.insert(lat.end(), r.latency_ms.begin(), r.latency_ms.end());
    }
    const double mean = sum / results[c].size();
    if (c == kSqlite) base = mean;
    char ratio[16] = "-";
    if (base > 0) std::snprintf(ratio, sizeof(ratio), "%.2f", mean / base);
    std::printf("| %s | %s | %.2f | %s | %.0f | %.0f | %.3f | %d |\n", results[c][0].name.c_str(),
                each.c_str(), mean, ratio, Percentile(lat, 0.5), Percentile(lat, 0.99),
                n ? cpu / n : 0.0, errors);
  }
  std::fflush(stdout);
}

// ---- search ---------------------------------------------------------------------------------

// service_bench populate into `data_dir` (and `catalog` when not ""); dies on failure.
void Populate(const Flags& f, int64_t faces, const std::string& data_dir,
              const std::string& catalog, double* seconds, std::string* table) {
  std::vector<std::string> argv = {
      f.service_bench,     "populate", "--data-dir", data_dir, "--faces",  std::to_string(faces),
      "--faces-per-photo", "100",      "--batch",    "200",    "--single", "0"};
  if (!f.seed_file.empty() && fs::exists(f.seed_file)) {
    argv.insert(argv.end(), {"--seed-file", f.seed_file});
  }
  if (!catalog.empty()) argv.insert(argv.end(), {"--catalog", catalog});
  std::string out, err;
  const auto start = Clock::now();
  const int rc = homeward::testing::RunCommand(argv, &out, &err);
  *seconds = Seconds(start);
  if (rc != 0) Die("service_bench populate failed (" + std::to_string(rc) + "): " + err);
  *table = out;
}

// The "| AddPhotoBatch ..." row's faces/s from service_bench populate's table.
double BatchFacesPerSecond(const std::string& table) {
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| AddPhotoBatch", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, '|');) cells.push_back(cell);
    if (cells.size() > 5) return std::stod(cells[5]);
  }
  return 0;
}

struct SearchRow {
  int64_t faces = 0;
  double populate_s[2] = {0, 0}, batch_fps[2] = {0, 0}, ready_s[2] = {0, 0};
  std::vector<double> ms[2];
  int errors = 0;
};

SearchRow RunSearch(const Flags& f, int64_t faces) {
  SearchRow row;
  row.faces = faces;
  const std::string work = MakeTempDirOrDie(f.work_dir + "/hw_msbench_search_");
  const std::string sqlite_dir = work + "/sqlite", pg_dir = work + "/pg";
  const std::string url = NewDatabaseUrl();
  std::string table;
  std::printf("search %lld: populating the SQLite catalog...\n", static_cast<long long>(faces));
  std::fflush(stdout);
  Populate(f, faces, sqlite_dir, "", &row.populate_s[0], &table);
  row.batch_fps[0] = BatchFacesPerSecond(table);
  std::printf("search %lld: populating the PostgreSQL catalog...\n", static_cast<long long>(faces));
  std::fflush(stdout);
  Populate(f, faces, pg_dir, url, &row.populate_s[1], &table);
  row.batch_fps[1] = BatchFacesPerSecond(table);
  {
    // Started one after the other: the first start builds the indexes (IVF training).
    Server s(f, "searchS", {}, sqlite_dir, 3600);
    Server p(f, "searchP", {"--catalog", url}, pg_dir, 3600);
    row.ready_s[0] = s.process.ready_seconds();
    row.ready_s[1] = p.process.ready_seconds();
    std::unique_ptr<Stub> stubs[2] = {NewStub(s.process.address(), 0),
                                      NewStub(p.process.address(), 1)};
    std::mt19937_64 rng(7);
    const int warmup = std::min(20, f.queries / 10);
    for (int i = 0; i < f.queries + warmup; ++i) {
      pb::SearchRequest req;
      req.set_face_id(std::to_string(1 + static_cast<int64_t>(rng() % faces)));
      req.set_top_k(10);
      double ms[2] = {0, 0};
      for (int k = 0; k < 2; ++k) {
        const int which = (i % 2 == 0) ? k : 1 - k;
        pb::SearchResponse resp;
        const auto t0 = Clock::now();
        grpc::Status st = Call(stubs[which].get(), &Stub::Search, req, &resp, 30);
        ms[which] = Seconds(t0) * 1e3;
        if (!st.ok()) {
          if (row.errors++ < 5) {
            std::fprintf(stderr, "Search: %d %s\n", st.error_code(), st.error_message().c_str());
          }
        }
      }
      if (i < warmup) continue;
      row.ms[0].push_back(ms[0]);
      row.ms[1].push_back(ms[1]);
    }
  }
  failures += row.errors;
  Postgres()->DropDatabase(url.substr(url.rfind('/') + 1)).IgnoreError();
  std::error_code ec;
  if (!f.keep) fs::remove_all(work, ec);
  return row;
}

void Search(const Flags& f) {
  std::vector<SearchRow> rows;
  for (int64_t n : f.faces) rows.push_back(RunSearch(f, n));
  std::printf(
      "\nsearch: Search{face_id} over gRPC, top_k 10, 1 client, a random stored face per "
      "query; %d queries per size (after warm-up), the SQLite and the PostgreSQL server "
      "running at once, queries interleaved; index %s\n\n",
      f.queries, f.index_factory.empty() ? "the server default" : f.index_factory.c_str());
  std::printf(
      "| faces | SQLite p50 ms | p99 ms | PostgreSQL p50 ms | p99 ms | PG / SQLite p50 | "
      "PG / SQLite p99 | errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : rows) {
    const double s50 = Percentile(r.ms[0], 0.5), s99 = Percentile(r.ms[0], 0.99);
    const double p50 = Percentile(r.ms[1], 0.5), p99 = Percentile(r.ms[1], 0.99);
    std::printf("| %lld | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d |\n",
                static_cast<long long>(r.faces), s50, s99, p50, p99, p50 / s50, p99 / s99,
                r.errors);
  }
  std::printf(
      "\n| faces | populate s SQLite / PG | AddPhotoBatch faces/s SQLite / PG | PG / SQLite "
      "| first start (index build) s SQLite / PG |\n|---:|---|---|---:|---|\n");
  for (const auto& r : rows) {
    std::printf("| %lld | %.0f / %.0f | %.0f / %.0f | %.2f | %.1f / %.1f |\n",
                static_cast<long long>(r.faces), r.populate_s[0], r.populate_s[1], r.batch_fps[0],
                r.batch_fps[1], r.batch_fps[0] > 0 ? r.batch_fps[1] / r.batch_fps[0] : 0.0,
                r.ready_s[0], r.ready_s[1]);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  if (const std::string why = PostgresServer::NotInstalledReason(); !why.empty()) {
    std::printf("multi_server_bench: skipped: %s\n", why.c_str());
    return 77;
  }
  const std::string& c = f.command;
  if (c != "lag" && c != "ingest" && c != "search" && c != "all" && c != "smoke") {
    std::fprintf(stderr, "unknown command %s\n", c.c_str());
    return 2;
  }
  std::printf("multi_server_bench %s on %u cores (load average read from /proc/loadavg: ",
              c.c_str(), std::thread::hardware_concurrency());
  std::printf("%s)\n", ReadFile("/proc/loadavg").substr(0, 14).c_str());
  if (c == "lag" || c == "all" || c == "smoke") Lag(f);
  if (c == "ingest" || c == "all" || c == "smoke") Ingest(f);
  if (c == "search" || c == "all") Search(f);
  std::printf("\nload average at the end: %s", ReadFile("/proc/loadavg").c_str());
  if (failures > 0) std::printf("FAIL: %d failed calls or timed-out trials\n", failures);
  return failures > 0 ? 1 : 0;
}
