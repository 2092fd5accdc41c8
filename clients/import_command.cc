// homeward import FOLDER_OR_CSV --kind missing|found [--resume]: bulk registration.
//
// A folder gives one case per image file (named after the file); a CSV one case per row
// (columns name, photo; optional sex, birth_date, place, event_date, age, taken_on, notes,
// contact; photo paths relative to the CSV, several separated by ';'). Each row: read its
// photos (nothing is sent if one is missing or too large), create the case, upload the photos.
//
// Resuming: every step that changed the server is appended to a state file (JSON lines,
// flushed at once) before the next step starts: the case id after CreateCase, each photo
// after AddPhoto, "done" at the end of the row. --resume replays it: done rows are skipped,
// a row whose case exists gets only its missing photos, so nothing is created twice. A
// "creating" event precedes each CreateCase: if its reply was lost (a crash, a dropped
// connection), the next attempt adopts the photo-less case of that name no row claims.
// Ctrl-C stops after the current row (a second one kills).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/commands.h"
#include "clients/rpc_client.h"

namespace homeward::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int kUnavailableRetries = 3;
constexpr int kExitInterrupted = 130;

struct ImportOptions {
  std::string input;
  std::string kind;
  bool resume = false;
  bool restart = false;
  std::string state;
  int limit = 0;  // 0: all rows
  bool no_progress = false;
};

// One case to create.
struct Row {
  std::string key;  // "line 3" (CSV) or the file name (folder); stable across runs
  std::string name;
  v1::Sex sex = v1::SEX_UNSPECIFIED;
  std::string birth_date, place, event_date, notes, contact, taken_on, age;
  std::vector<std::string> photos;  // as written in the input
  std::vector<fs::path> photo_paths;
  std::string error;  // a malformed row: why
};

// What earlier runs did to one row.
struct RowState {
  std::string name;
  std::string case_id;
  std::set<std::string> photos_done;
  bool done = false;
  bool creating = false;  // a CreateCase was sent; its reply may have been lost
};

// ---- Input -------------------------------------------------------------------------------

bool IsImageFile(const fs::path& p) {
  const std::string ext = absl::AsciiStrToLower(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp";
}

absl::StatusOr<std::vector<Row>> ReadFolder(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && IsImageFile(e.path())) files.push_back(e.path());
  }
  if (ec) return absl::NotFoundError(absl::StrCat(dir.string(), ": ", ec.message()));
  std::sort(files.begin(), files.end());
  std::vector<Row> rows;
  for (const fs::path& f : files) {
    Row r;
    r.key = f.filename().string();
    r.name = f.stem().string();
    r.photos = {f.filename().string()};
    r.photo_paths = {f};
    rows.push_back(std::move(r));
  }
  return rows;
}

// RFC 4180 records: quoted fields may hold commas, quotes ("") and newlines.
// Each record comes with the line it starts on.
std::vector<std::pair<int, std::vector<std::string>>> ParseCsv(const std::string& text) {
  std::vector<std::pair<int, std::vector<std::string>>> records;
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, any = false;
  int line = 1, record_line = 1;
  auto end_record = [&] {
    if (any || !field.empty() || !fields.empty()) {
      fields.push_back(field);
      records.emplace_back(record_line, std::move(fields));
    }
    fields.clear();
    field.clear();
    any = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      fields.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
      record_line = line;
    } else {
      field += c;
    }
  }
  end_record();
  return records;
}

absl::StatusOr<std::vector<Row>> ReadCsv(const fs::path& csv) {
  std::ifstream in(csv, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(csv.string(), ": cannot read file"));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 BOM
  auto records = ParseCsv(text);
  if (records.empty()) return absl::InvalidArgumentError(csv.string() + ": empty CSV");

  std::map<std::string, size_t> col;
  const std::vector<std::string>& header = records[0].second;
  for (size_t i = 0; i < header.size(); ++i) {
    col[absl::AsciiStrToLower(absl::StripAsciiWhitespace(header[i]))] = i;
  }
  for (const char* required : {"name", "photo"}) {
    if (!col.count(required)) {
      return absl::InvalidArgumentError(
          absl::StrCat(csv.string(), ": the header has no '", required,
                       "' column (expected name,sex,birth_date,place,event_date,photo[,age])"));
    }
  }
  const fs::path base = csv.parent_path();
  std::vector<Row> rows;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& [line, fields] = records[r];
    auto get = [&, &fields = fields](const char* name) -> std::string {
      auto it = col.find(name);
      if (it == col.end() || it->second >= fields.size()) return "";
      return std::string(absl::StripAsciiWhitespace(fields[it->second]));
    };
    bool blank = true;
    for (const std::string& f : fields) blank &= absl::StripAsciiWhitespace(f).empty();
    if (blank) continue;
    Row row;
    row.key = absl::StrCat("line ", line);
    row.name = get("name");
    row.birth_date = get("birth_date");
    row.place = get("place");
    row.event_date = get("event_date");
    row.notes = get("notes");
    row.contact = get("contact");
    row.taken_on = get("taken_on");
    row.age = get("age");
    for (absl::string_view p : absl::StrSplit(get("photo"), ';', absl::SkipWhitespace())) {
      row.photos.emplace_back(absl::StripAsciiWhitespace(p));
      fs::path path(row.photos.back());
      row.photo_paths.push_back(path.is_absolute() ? path : base / path);
    }
    absl::StatusOr<v1::Sex> sex = ParseSex(get("sex"));
    if (row.name.empty()) {
      row.error = "no name";
    } else if (row.photos.empty()) {
      row.error = "no photo";
    } else if (!sex.ok()) {
      row.error = std::string(sex.status().message());
    } else if (!IsDateOrEmpty(row.birth_date)) {
      row.error = "birth_date '" + row.birth_date + "': expected YYYY-MM-DD";
    } else if (!IsDateOrEmpty(row.event_date)) {
      row.error = "event_date '" + row.event_date + "': expected YYYY-MM-DD";
    } else if (!IsDateOrEmpty(row.taken_on)) {
      row.error = "taken_on '" + row.taken_on + "': expected YYYY-MM-DD";
    } else if (!row.age.empty() && !ParseAge(row.age, false).ok()) {
      row.error = std::string(ParseAge(row.age, false).status().message());
    }
    if (sex.ok()) row.sex = *sex;
    rows.push_back(std::move(row));
  }
  return rows;
}

// ---- State file --------------------------------------------------------------------------

class StateFile {
 public:
  // Loads the events of earlier runs (a torn last line is ignored) and opens for appending.
  absl::Status Open(const fs::path& path, const std::string& kind, const std::string& input,
                    bool keep) {
    path_ = path;
    if (keep && fs::exists(path)) {
      std::ifstream in(path);
      std::string line;
      bool first = true;
      while (std::getline(in, line)) {
        Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) continue;
        if (first) {
          first = false;
          if (j.value("kind", "") != kind) {
            return absl::FailedPreconditionError(absl::StrCat(
                path.string(), " was written by an import of kind ", j.value("kind", "?"), ", not ",
                kind, "; use --restart or another --state"));
          }
          continue;
        }
        RowState& s = rows_[j.value("key", "")];
        if (j.contains("name")) s.name = j.value("name", "");
        if (j.contains("caseId")) s.case_id = j.value("caseId", "");
        if (j.contains("photo")) s.photos_done.insert(j.value("photo", ""));
        if (j.value("done", false)) s.done = true;
        if (j.value("creating", false)) s.creating = true;
      }
      // A run killed mid-write leaves a torn last line: end it, or the next event would be
      // glued to it and lost.
      std::ifstream tail(path, std::ios::binary | std::ios::ate);
      bool torn = false;
      if (tail && tail.tellg() > 0) {
        tail.seekg(-1, std::ios::end);
        torn = tail.get() != '\n';
      }
      out_.open(path, std::ios::app);
      if (torn) out_ << "\n";
    } else {
      out_.open(path, std::ios::trunc);
      Append({{"homewardImport", 1}, {"kind", kind}, {"input", input}});
    }
    if (!out_) return absl::PermissionDeniedError(path.string() + ": cannot write state file");
    return absl::OkStatus();
  }

  const RowState* Find(const std::string& key) const {
    auto it = rows_.find(key);
    return it == rows_.end() ? nullptr : &it->second;
  }
  RowState& Get(const std::string& key) { return rows_[key]; }
  bool Claims(const std::string& case_id) const {
    for (const auto& [key, row] : rows_) {
      if (row.case_id == case_id) return true;
    }
    return false;
  }

  void Append(const Json& event) {
    out_ << event.dump() << "\n";
    out_.flush();
  }

 private:
  fs::path path_;
  std::ofstream out_;
  std::map<std::string, RowState> rows_;
};

// ---- Progress ----------------------------------------------------------------------------

class Progress {
 public:
  Progress(size_t total, bool enabled)
      : total_(total),
        enabled_(enabled),
        tty_(isatty(STDERR_FILENO) != 0),
        start_(Clock::now()),
        last_(start_) {}

  // `done` rows handled so far (including skipped), `worked` of them in this run.
  void Update(size_t done, size_t worked, size_t failed, bool final = false) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (!final && !tty_ && now - last_ < std::chrono::seconds(2)) return;
    if (final && !tty_ && done == last_done_ && printed_) return;  // already on screen
    last_ = now;
    last_done_ = done;
    printed_ = true;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? worked / secs : 0;
    std::string eta = "--:--";
    if (rate > 0) {
      const int left = static_cast<int>((total_ - done) / rate + 0.5);
      eta = absl::StrFormat("%d:%02d", left / 60, left % 60);
    }
    constexpr int kWidth = 24;
    const int filled = total_ ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '.');
    std::cerr << (tty_ ? "\r" : "")
              << absl::StrFormat("[%s] %d/%d  %.1f rows/s  ETA %s  %d failed", bar, done, total_,
                                 rate, eta, failed)
              << (tty_ && !final ? "  " : "\n");
    std::cerr.flush();
  }

 private:
  using Clock = std::chrono::steady_clock;
  size_t total_;
  bool enabled_, tty_;
  Clock::time_point start_, last_;
  size_t last_done_ = 0;
  bool printed_ = false;
};

// ---- Interruption ------------------------------------------------------------------------

std::atomic<bool> g_stop{false};

extern "C" void OnSignal(int sig) {
  g_stop = true;
  std::signal(sig, SIG_DFL);  // a second signal kills
}

// ---- The import --------------------------------------------------------------------------

std::string RpcText(const grpc::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ",
                      s.error_message());
}

bool IsFatal(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
         s.error_code() == grpc::StatusCode::UNAVAILABLE;
}

// Retries UNAVAILABLE (busy server, connection refused) with back-off: the request was not
// processed, so repeating it cannot create a duplicate.
template <typename Call>
grpc::Status WithRetries(Call call) {
  grpc::Status s;
  for (int attempt = 0; attempt <= kUnavailableRetries; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1 << (attempt - 1)));
    s = call();
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE || g_stop) break;
  }
  return s;
}

// What the server reported for the photos this run sent.
struct PhotoCounts {
  size_t sent = 0;     // AddPhoto calls the server answered (OK or refused)
  size_t refused = 0;  // answered with an error, e.g. several faces and none chosen
  size_t faces = 0;    // faces found in the photos answered OK
  size_t without_face = 0;
};

class Importer {
 public:
  Importer(const RpcClient& client, v1::CaseKind kind, StateFile& state)
      : client_(client), kind_(kind), state_(state) {}

  const PhotoCounts& counts() const { return counts_; }

  // Ok, or the reason the row failed. `fatal` is set when the rest cannot succeed either.
  absl::Status ImportRow(const Row& row, bool* fatal) {
    if (!row.error.empty()) return absl::InvalidArgumentError(row.error);
    RowState& st = state_.Get(row.key);

    // Read every photo first: a missing or oversize file sends nothing.
    std::vector<std::pair<size_t, std::string>> images;
    for (size_t i = 0; i < row.photos.size(); ++i) {
      if (st.photos_done.count(row.photos[i])) continue;
      absl::StatusOr<std::string> bytes = ReadImageFile(row.photo_paths[i].string());
      if (!bytes.ok()) {
        return absl::Status(bytes.status().code(),
                            absl::StrCat("photo ", bytes.status().message()));
      }
      images.emplace_back(i, *std::move(bytes));
    }

    if (st.case_id.empty() && st.creating) {
      // An earlier run sent CreateCase and stopped before recording the reply: adopt the
      // case it may have created rather than create a second one.
      absl::StatusOr<std::string> lost = FindLostCase(row);
      if (!lost.ok()) {
        *fatal = lost.status().code() == absl::StatusCode::kUnavailable;
        return absl::UnknownError(absl::StrCat("look for the case of an interrupted run: ",
                                               lost.status().message()));
      }
      if (!lost->empty()) AdoptCase(row, *lost);
    }
    if (st.case_id.empty()) {
      st.creating = true;
      state_.Append({{"key", row.key}, {"name", row.name}, {"creating", true}});
      v1::CreateCaseRequest req;
      v1::Case& c = *req.mutable_case_();
      c.set_kind(kind_);
      c.set_display_name(row.name);
      c.set_sex(row.sex);
      c.set_birth_date(row.birth_date);
      c.set_place(row.place);
      c.set_event_date(row.event_date);
      c.set_notes(row.notes);
      c.set_reporter_contact(row.contact);
      v1::Case reply;
      grpc::Status s;
      std::string adopted;
      for (int attempt = 0; attempt <= kUnavailableRetries; ++attempt) {
        if (attempt > 0) {
          std::this_thread::sleep_for(std::chrono::seconds(1 << (attempt - 1)));
          // UNAVAILABLE from a broken connection does not prove the case was not created.
          absl::StatusOr<std::string> lost = FindLostCase(row);
          if (lost.ok() && !lost->empty()) {
            adopted = *lost;
            break;
          }
        }
        s = client_.stub().CreateCase(client_.NewContext(CallKind::kQuick).get(), req, &reply);
        if (s.error_code() != grpc::StatusCode::UNAVAILABLE || g_stop) break;
      }
      if (!adopted.empty()) {
        AdoptCase(row, adopted);
      } else if (!s.ok()) {
        *fatal = IsFatal(s);
        return absl::UnknownError("create case: " + RpcText(s));
      } else {
        st.name = row.name;
        st.case_id = reply.id();
        state_.Append({{"key", row.key}, {"name", row.name}, {"caseId", reply.id()}});
      }
    }

    std::vector<std::string> problems;
    for (auto& [i, bytes] : images) {
      if (g_stop) return absl::CancelledError("interrupted");
      v1::AddPhotoRequest req;
      req.set_case_id(st.case_id);
      req.set_image(std::move(bytes));
      req.set_taken_on(row.taken_on);
      req.set_face_index(-1);
      req.set_source("import");
      if (!row.age.empty()) *req.mutable_age() = *ParseAge(row.age, false);
      v1::AddPhotoResponse reply;
      grpc::Status s = WithRetries([&] {
        return client_.stub().AddPhoto(client_.NewContext(CallKind::kUpload).get(), req, &reply);
      });
      const bool answered = s.error_code() != grpc::StatusCode::UNAVAILABLE &&
                            s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
                            s.error_code() != grpc::StatusCode::CANCELLED;
      if (answered) ++counts_.sent;
      if (!s.ok()) {
        if (answered) ++counts_.refused;
        *fatal = IsFatal(s);
        problems.push_back(absl::StrCat("photo ", row.photos[i], ": ", RpcText(s)));
        if (*fatal) break;
        continue;
      }
      counts_.faces += reply.faces_size();
      if (reply.faces().empty()) ++counts_.without_face;
      bool stored = false;
      std::string why;
      for (const v1::DetectedFace& f : reply.faces()) {
        stored |= f.stored();
        if (!f.stored() && why.empty()) {
          why = !f.not_stored_reason().empty() ? f.not_stored_reason() : f.quality().reason();
        }
      }
      if (!stored) {
        problems.push_back(absl::StrCat("photo ", row.photos[i], ": no face stored (",
                                        reply.faces().empty() ? "no face found" : why, ")"));
        continue;
      }
      st.photos_done.insert(row.photos[i]);
      state_.Append({{"key", row.key}, {"photo", row.photos[i]}, {"photoId", reply.photo_id()}});
    }
    if (!problems.empty()) return absl::UnknownError(absl::StrJoin(problems, "; "));
    st.done = true;
    state_.Append({{"key", row.key}, {"done", true}});
    return absl::OkStatus();
  }

 private:
  // The case a lost CreateCase reply would have named: a case of this kind and name without
  // photos that no row of the state file claims (the newest if several); "" when none.
  absl::StatusOr<std::string> FindLostCase(const Row& row) {
    std::string found;
    int64_t found_id = 0;
    v1::ListCasesRequest req;
    req.set_kind(kind_);
    req.set_page_size(1000);
    do {
      v1::ListCasesResponse resp;
      grpc::Status s =
          client_.stub().ListCases(client_.NewContext(CallKind::kQuick).get(), req, &resp);
      if (!s.ok()) {
        return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
      }
      for (const v1::Case& c : resp.cases()) {
        if (c.display_name() != row.name || c.photo_count() != 0 || state_.Claims(c.id())) continue;
        const int64_t id = std::atoll(c.id().c_str());
        if (id > found_id) found_id = id, found = c.id();
      }
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return found;
  }

  void AdoptCase(const Row& row, const std::string& case_id) {
    RowState& st = state_.Get(row.key);
    st.name = row.name;
    st.case_id = case_id;
    state_.Append({{"key", row.key}, {"name", row.name}, {"caseId", case_id}, {"adopted", true}});
  }

  const RpcClient& client_;
  v1::CaseKind kind_;
  StateFile& state_;
  PhotoCounts counts_;
};

fs::path DefaultStatePath(const fs::path& input) {
  std::string s = input.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s + ".homeward-import-state.jsonl";
}

int RunImport(const ImportOptions& opt, const GlobalOptions& global) {
  absl::StatusOr<v1::CaseKind> kind = ParseKind(opt.kind);
  if (!kind.ok()) return PrintError(kind.status().message(), 2);
  if (*kind == v1::SIGHTING) return PrintError("import: --kind must be missing or found", 2);
  if (opt.resume && opt.restart) return PrintError("import: --resume or --restart, not both", 2);
  const fs::path input(opt.input);
  std::error_code ec;
  absl::StatusOr<std::vector<Row>> rows =
      fs::is_directory(input, ec)      ? ReadFolder(input)
      : fs::is_regular_file(input, ec) ? ReadCsv(input)
                                       : absl::StatusOr<std::vector<Row>>(absl::NotFoundError(
                                             opt.input + ": no such folder or CSV file"));
  if (!rows.ok()) return PrintError(rows.status().message());

  const fs::path state_path = opt.state.empty() ? DefaultStatePath(input) : fs::path(opt.state);
  if (fs::exists(state_path) && !opt.resume && !opt.restart) {
    return PrintError(absl::StrCat(state_path.string(),
                                   " exists from an earlier import of this input: pass --resume "
                                   "to continue it, or --restart to import everything again"),
                      2);
  }
  StateFile state;
  const std::string kind_name = v1::CaseKind_Name(*kind);
  if (absl::Status s = state.Open(state_path, kind_name, fs::absolute(input).string(),
                                  /*keep=*/opt.resume);
      !s.ok()) {
    return PrintError(s.message());
  }
  for (const Row& row : *rows) {
    const RowState* st = state.Find(row.key);
    if (st && !st->name.empty() && st->name != row.name) {
      return PrintError(
          absl::StrCat(state_path.string(), " does not match ", opt.input, ": ", row.key, " was '",
                       st->name, "', now '", row.name, "'; use --restart or another --state"),
          2);
    }
  }

  auto client = RpcClient::Connect(global);
  if (!client.ok()) return PrintError(client.status().message(), 2);
  Importer importer(**client, *kind, state);

  g_stop = false;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  Json cases = Json::array(), failures = Json::array();
  size_t done = 0, worked = 0, imported = 0, skipped = 0;
  bool interrupted = false, aborted = false, limited = false;
  Progress progress(rows->size(), !opt.no_progress);
  const auto started = std::chrono::steady_clock::now();
  for (const Row& row : *rows) {
    const RowState* st = state.Find(row.key);
    if (st && st->done) {
      ++skipped;
      ++done;
      cases.push_back(
          {{"key", row.key}, {"name", row.name}, {"caseId", st->case_id}, {"status", "skipped"}});
      continue;
    }
    if (g_stop) {
      interrupted = true;
      break;
    }
    if (opt.limit > 0 && static_cast<int>(worked) >= opt.limit) {
      limited = true;
      break;
    }
    bool fatal = false;
    absl::Status s = importer.ImportRow(row, &fatal);
    ++worked;
    ++done;
    st = state.Find(row.key);
    const std::string case_id = st ? st->case_id : "";
    if (s.ok()) {
      ++imported;
      cases.push_back(
          {{"key", row.key}, {"name", row.name}, {"caseId", case_id}, {"status", "imported"}});
    } else if (s.code() == absl::StatusCode::kCancelled) {
      interrupted = true;
      --done;
      break;
    } else {
      failures.push_back({{"key", row.key},
                          {"name", row.name},
                          {"caseId", case_id},
                          {"reason", std::string(s.message())}});
    }
    progress.Update(done, worked, failures.size());
    if (fatal) {
      aborted = true;
      break;
    }
  }
  progress.Update(done, worked, failures.size(), /*final=*/true);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const PhotoCounts& counts = importer.counts();
  const double photos_per_second = seconds > 0 ? counts.sent / seconds : 0;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);

  const size_t remaining = rows->size() - done;
  if (global.json) {
    Json summary = {{"input", opt.input},
                    {"kind", kind_name},
                    {"stateFile", state_path.string()},
                    {"total", rows->size()},
                    {"imported", imported},
                    {"skipped", skipped},
                    {"failed", failures.size()},
                    {"remaining", remaining},
                    {"photosSent", counts.sent},
                    {"photosRefused", counts.refused},
                    {"facesFound", counts.faces},
                    {"photosWithoutFace", counts.without_face},
                    {"seconds", seconds},
                    {"photosPerSecond", photos_per_second},
                    {"interrupted", interrupted || aborted || limited},
                    {"cases", cases},
                    {"failures", failures}};
    std::cout << summary.dump() << "\n";
  }
  std::ostream& out = global.json ? std::cerr : std::cout;
  out << absl::StrFormat("%d imported, %d already done, %d failed, %d not attempted (of %d)\n",
                         imported, skipped, failures.size(), remaining, rows->size());
  out << absl::StrFormat(
      "%d photos sent in %.1f s: %.2f photos/s; %d faces found, %d photos without a face, "
      "%d refused\n",
      counts.sent, seconds, photos_per_second, counts.faces, counts.without_face, counts.refused);
  for (const Json& f : failures) {
    out << "  " << f["key"].get<std::string>() << " (" << f["name"].get<std::string>()
        << "): " << f["reason"].get<std::string>() << "\n";
  }
  if (interrupted || aborted || limited || !failures.empty()) {
    out << "re-run with --resume to " << (failures.empty() ? "continue" : "retry the failures")
        << " (state: " << state_path.string() << ")\n";
  }
  if (interrupted) return kExitInterrupted;
  return failures.empty() ? 0 : 1;
}

}  // namespace

Runner RegisterImport(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<ImportOptions>();
  CLI::App* sub = app.add_subcommand(
      "import", "register many cases from a folder of photos or a CSV; resumable");
  sub->add_option("input", opt->input,
                  "folder (one case per image, named after the file) or CSV "
                  "(name,sex,birth_date,place,event_date,photo[,age]; photos separated by ';')")
      ->required();
  sub->add_option("--kind", opt->kind, "missing or found")->required();
  sub->add_flag("--resume", opt->resume, "skip the rows an earlier run finished");
  sub->add_flag("--restart", opt->restart, "forget an earlier run and import every row again");
  sub->add_option("--state", opt->state,
                  "state file (default: INPUT.homeward-import-state.jsonl next to the input)");
  sub->add_option("--limit", opt->limit, "stop after this many rows (a trial run)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--no-progress", opt->no_progress, "no progress bar on stderr");
  return [opt, &global] { return RunImport(*opt, global); };
}

}  // namespace homeward::cli
