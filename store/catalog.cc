#include "store/catalog.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <map>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/civil_date.h"
#include "base/status_macros.h"
#include "store/internal/files.h"
#include "store/internal/schema.h"
#include "store/internal/sqlite.h"

namespace homeward::store {
namespace {

using internal::Statement;
using internal::StatementCache;
using internal::Transaction;

// The id of a new row: never one a deleted row had (schema version 4's id_high_water).
#define HW_NEXT_ID_SQL(table) "(SELECT max_id + 1 FROM id_high_water WHERE name = '" table "')"

constexpr size_t kMaxPhotoBytes = 64 << 20;
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxPlaceBytes = 500;  // the API's documented place limit (docs/API.md)
constexpr size_t kMaxTextBytes = 64 << 10;
constexpr int kMaxPageSize = 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- Validation ---------------------------------------------------------------------------

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Parses "YYYY-MM-DD" with a real calendar day.
bool ParseDate(absl::string_view s, int* y, int* m, int* d) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  *m = (s[5] - '0') * 10 + (s[6] - '0');
  *d = (s[8] - '0') * 10 + (s[9] - '0');
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (*y < 1900 || *m < 1 || *m > 12 || *d < 1) return false;
  return *d <= kDays[*m - 1] + (*m == 2 && IsLeap(*y) ? 1 : 0);
}

absl::Status CheckDate(absl::string_view field, absl::string_view value) {
  int y, m, d;
  if (value.empty() || ParseDate(value, &y, &m, &d)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be a calendar date \"YYYY-MM-DD\" (year >= 1900) or empty; got \"",
                   value.substr(0, 32), "\""));
}

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max) {
  if (value.size() <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", value.size(), " bytes; the limit is ", max));
}

bool ValidKind(CaseKind k) {
  return k == CaseKind::kMissing || k == CaseKind::kFound || k == CaseKind::kSighting;
}
bool ValidStatus(CaseStatus s) {
  return s == CaseStatus::kOpen || s == CaseStatus::kReunited || s == CaseStatus::kClosed ||
         s == CaseStatus::kWithdrawn;
}
bool ValidSex(Sex s) { return s == Sex::kUnknown || s == Sex::kFemale || s == Sex::kMale; }

absl::Status ValidateCase(const Case& c) {
  if (!ValidKind(c.kind)) {
    return absl::InvalidArgumentError("kind must be kMissing, kFound or kSighting");
  }
  if (!ValidStatus(c.status)) {
    return absl::InvalidArgumentError("status must be kOpen, kReunited, kClosed or kWithdrawn");
  }
  if (!ValidSex(c.sex)) return absl::InvalidArgumentError("sex must be kUnknown, kFemale or kMale");
  if (c.display_name.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError("display_name is required (a name or an alias)");
  }
  HW_RETURN_IF_ERROR(CheckText("display_name", c.display_name, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckDate("date_of_birth", c.date_of_birth));
  HW_RETURN_IF_ERROR(CheckDate("event_date", c.event_date));
  if ((c.birth_year_min == 0) != (c.birth_year_max == 0)) {
    return absl::InvalidArgumentError("set both birth_year_min and birth_year_max, or neither");
  }
  if (c.birth_year_min != 0 &&
      (c.birth_year_min < 1900 || c.birth_year_max > 2200 || c.birth_year_min > c.birth_year_max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("birth year range must satisfy 1900 <= min <= max; got ", c.birth_year_min,
                     "..", c.birth_year_max));
  }
  HW_RETURN_IF_ERROR(CheckText("place", c.place, kMaxPlaceBytes));
  HW_RETURN_IF_ERROR(CheckText("notes", c.notes, kMaxTextBytes));
  HW_RETURN_IF_ERROR(CheckText("reporter_contact", c.reporter_contact, kMaxTextBytes));
  return CheckText("owner_key_id", c.owner_key_id, kMaxNameBytes);
}

absl::Status ValidatePhoto(const Photo& p, const std::string& bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("photo bytes are empty");
  if (bytes.size() > kMaxPhotoBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("photo is ", bytes.size(), " bytes; the limit is ", kMaxPhotoBytes));
  }
  HW_RETURN_IF_ERROR(CheckDate("date_taken", p.date_taken));
  const bool min_unknown = p.age_min < 0, max_unknown = p.age_max < 0;
  if (min_unknown != max_unknown || !std::isfinite(p.age_min) || !std::isfinite(p.age_max)) {
    return absl::InvalidArgumentError("set both age_min and age_max (years), or both to -1");
  }
  if (!min_unknown && (p.age_min > p.age_max || p.age_max > 120)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "age range must satisfy 0 <= age_min <= age_max <= 120; got ", p.age_min, "..", p.age_max));
  }
  if (p.width < 0 || p.height < 0) {
    return absl::InvalidArgumentError("width and height must be >= 0 (0 = unknown)");
  }
  return CheckText("source", p.source, kMaxNameBytes);
}

absl::Status ValidateFace(const Face& f, size_t i) {
  if (f.descriptor.size() != static_cast<size_t>(kDescriptorDim)) {
    return absl::InvalidArgumentError(absl::StrCat("faces[", i, "].descriptor has ",
                                                   f.descriptor.size(), " floats; it needs ",
                                                   kDescriptorDim));
  }
  for (float v : f.descriptor) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("faces[", i, "].descriptor contains a NaN or infinity"));
    }
  }
  if (f.landmarks.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("faces[", i, "].landmarks must hold x,y pairs (an even count)"));
  }
  if (f.box_w < 0 || f.box_h < 0) {
    return absl::InvalidArgumentError(absl::StrCat("faces[", i, "].box_w/box_h must be >= 0"));
  }
  return CheckText("model_id", f.model_id, kMaxNameBytes);
}

// Age at photo: the photo's own, else derived from the case's birth date or birth years.
void DeriveAge(const std::string& date_taken, const std::string& dob, int by_min, int by_max,
               double* age_min, double* age_max) {
  if (*age_min >= 0) return;
  int ty, tm, td;
  if (!ParseDate(date_taken, &ty, &tm, &td)) return;
  int by, bm, bd;
  if (ParseDate(dob, &by, &bm, &bd)) {
    const double years = (DaysFromCivil(ty, tm, td) - DaysFromCivil(by, bm, bd)) / 365.2425;
    if (years >= 0) *age_min = *age_max = years;
  } else if (by_min > 0 && by_max >= by_min && ty >= by_min) {
    *age_min = std::max(0, ty - by_max - 1);
    *age_max = ty - by_min;
  }
}

// YYYY-MM-DD (UTC) of a Unix time in milliseconds.
std::string DateOfMillis(int64_t ms) {
  return DateOfDays((ms >= 0 ? ms : ms - 86399999) / 86400000);
}

// ---- Row mapping --------------------------------------------------------------------------

constexpr char kCaseColumns[] =
    "id, kind, display_name, sex, date_of_birth, birth_year_min, birth_year_max, event_date, "
    "place, notes, reporter_contact, owner_key_id, status, created_ms, updated_ms";

Case ReadCase(const Statement& q) {
  Case c;
  c.id = q.Int(0);
  c.kind = static_cast<CaseKind>(q.Int(1));
  c.display_name = q.Text(2);
  c.sex = static_cast<Sex>(q.Int(3));
  c.date_of_birth = q.Text(4);
  c.birth_year_min = static_cast<int>(q.Int(5));
  c.birth_year_max = static_cast<int>(q.Int(6));
  c.event_date = q.Text(7);
  c.place = q.Text(8);
  c.notes = q.Text(9);
  c.reporter_contact = q.Text(10);
  c.owner_key_id = q.Text(11);
  c.status = static_cast<CaseStatus>(q.Int(12));
  c.created_ms = q.Int(13);
  c.updated_ms = q.Int(14);
  return c;
}

// Binds the caller-set fields of a case at 1..13 (kind and status included).
void BindCase(Statement& q, const Case& c) {
  q.Bind(1, static_cast<int>(c.kind))
      .BindText(2, c.display_name)
      .Bind(3, static_cast<int>(c.sex))
      .BindTextOrNull(4, c.date_of_birth)
      .Bind(5, c.birth_year_min)
      .Bind(6, c.birth_year_max)
      .BindTextOrNull(7, c.event_date)
      .BindTextOrNull(8, c.place)
      .BindTextOrNull(9, c.notes)
      .BindTextOrNull(10, c.reporter_contact)
      .BindTextOrNull(11, c.owner_key_id)
      .Bind(12, static_cast<int>(c.status));
}

constexpr char kPhotoColumns[] =
    "id, case_id, date_taken, age_min, age_max, age_estimated, source, width, height, sha256, "
    "file_name, created_ms";

Photo ReadPhoto(const Statement& q) {
  Photo p;
  p.id = q.Int(0);
  p.case_id = q.Int(1);
  p.date_taken = q.Text(2);
  p.age_min = q.IsNull(3) ? -1 : q.Real(3);
  p.age_max = q.IsNull(4) ? -1 : q.Real(4);
  p.age_estimated = q.Int(5) != 0;
  p.source = q.Text(6);
  p.width = static_cast<int>(q.Int(7));
  p.height = static_cast<int>(q.Int(8));
  p.sha256 = q.Text(9);
  p.file_name = q.Text(10);
  p.created_ms = q.Int(11);
  return p;
}

constexpr char kFaceColumns[] =
    "id, photo_id, box_x, box_y, box_w, box_h, landmarks, width_px, sharpness, yaw, usable, "
    "detector_score, descriptor, model_id";

std::vector<float> FloatsFromBlob(absl::string_view blob) {
  std::vector<float> v(blob.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), blob.data(), v.size() * sizeof(float));
  return v;
}

Face ReadFace(const Statement& q) {
  Face f;
  f.id = q.Int(0);
  f.photo_id = q.Int(1);
  f.box_x = static_cast<int>(q.Int(2));
  f.box_y = static_cast<int>(q.Int(3));
  f.box_w = static_cast<int>(q.Int(4));
  f.box_h = static_cast<int>(q.Int(5));
  f.landmarks = FloatsFromBlob(q.Blob(6));
  f.width_px = static_cast<float>(q.Real(7));
  f.sharpness = static_cast<float>(q.Real(8));
  f.yaw_deg = static_cast<float>(q.Real(9));
  f.usable = q.Int(10) != 0;
  f.detector_score = static_cast<float>(q.Real(11));
  f.descriptor = FloatsFromBlob(q.Blob(12));
  f.model_id = q.Text(13);
  return f;
}

// Face attributes joined with their photo and case; column 14 is the descriptor, 15-20 the
// box and quality.
// Lookups by id select NULL instead of the 512-byte descriptor they do not need.
std::string AttributesSelect(bool with_descriptor) {
  return absl::StrCat(
      "SELECT f.id, f.photo_id, p.case_id, c.kind, c.status, c.sex, p.age_min, p.age_max, "
      "p.date_taken, c.place, f.usable, c.date_of_birth, c.birth_year_min, c.birth_year_max, ",
      with_descriptor ? "f.descriptor" : "NULL",
      ", f.box_x, f.box_y, f.box_w, f.box_h, f.width_px, f.yaw, p.age_estimated, c.event_date, "
      "c.created_ms FROM faces f JOIN photos p ON p.id = f.photo_id "
      "JOIN cases c ON c.id = p.case_id ");
}

FaceAttributes ReadAttributes(const Statement& q) {
  FaceAttributes a;
  a.face_id = q.Int(0);
  a.photo_id = q.Int(1);
  a.case_id = q.Int(2);
  a.kind = static_cast<CaseKind>(q.Int(3));
  a.status = static_cast<CaseStatus>(q.Int(4));
  a.sex = static_cast<Sex>(q.Int(5));
  a.age_min = q.IsNull(6) ? -1 : q.Real(6);
  a.age_max = q.IsNull(7) ? -1 : q.Real(7);
  a.date_taken = q.Text(8);
  a.place = q.Text(9);
  a.usable = q.Int(10) != 0;
  a.box_x = static_cast<int>(q.Int(15));
  a.box_y = static_cast<int>(q.Int(16));
  a.box_w = static_cast<int>(q.Int(17));
  a.box_h = static_cast<int>(q.Int(18));
  a.width_px = static_cast<float>(q.Real(19));
  a.yaw_deg = static_cast<float>(q.Real(20));
  a.age_estimated = a.age_min >= 0 && q.Int(21) != 0;
  a.date_of_birth = q.Text(11);
  a.birth_year_min = static_cast<int>(q.Int(12));
  a.birth_year_max = static_cast<int>(q.Int(13));
  const bool photo_age = a.age_min >= 0;
  DeriveAge(a.date_taken, a.date_of_birth, a.birth_year_min, a.birth_year_max, &a.age_min,
            &a.age_max);
  a.age_from_birth_date = !photo_age && a.age_min >= 0 && !a.date_of_birth.empty();
  a.case_date = q.Text(22);
  if (a.case_date.empty() && q.Int(23) > 0) a.case_date = DateOfMillis(q.Int(23));
  return a;
}

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, const CatalogOptions& options,
                                        bool reader) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = internal::SqliteError(db, rc, absl::StrCat("open ", path));
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  absl::Status s = internal::Exec(
      db, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA synchronous = FULL;");
  if (s.ok() && reader) s = internal::Exec(db, "PRAGMA query_only = ON");
  if (s.ok() && !reader) {
    // WAL is persistent in the file; set it once, from the writer, and check it took.
    absl::StatusOr<Statement> q = Statement::Prepare(db, "PRAGMA journal_mode = WAL");
    s = q.status();
    if (s.ok()) {
      absl::StatusOr<bool> row = q->Step();
      if (!row.ok()) {
        s = row.status();
      } else if (!*row || q->Text(0) != "wal") {
        s = absl::FailedPreconditionError(
            absl::StrCat("could not enable WAL on ", path, " (is it on a network filesystem?)"));
      }
    }
    if (s.ok()) s = internal::Exec(db, "PRAGMA journal_size_limit = 67108864");
  }
  if (!s.ok()) {
    sqlite3_close_v2(db);
    return s;
  }
  return db;
}

// The last change seq in the open transaction's snapshot (0 when there is none).
absl::StatusOr<int64_t> LastSeqIn(sqlite3* db) {
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(db, "SELECT coalesce(max(seq), 0) FROM changes"));
  HW_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

}  // namespace

// ---- Impl ---------------------------------------------------------------------------------

class Catalog::Impl {
 public:
  Impl(std::string data_dir, const CatalogOptions& options, int lock_fd, sqlite3* writer)
      : data_dir_(std::move(data_dir)),
        photos_dir_(data_dir_ + "/photos"),
        db_path_(data_dir_ + "/catalog.db"),
        options_(options),
        lock_fd_(lock_fd),
        writer_(writer) {}

  ~Impl() {
    stop_sweep_ = true;
    if (sweeper_.joinable()) sweeper_.join();
    {
      absl::MutexLock l(&pool_mu_);
      idle_readers_.clear();
    }
    {
      absl::MutexLock l(&write_mu_);
      sqlite3_close_v2(writer_);
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  // A pooled read connection and its prepared statements.
  struct ReadConnection {
    explicit ReadConnection(sqlite3* d) : db(d), cache(std::make_unique<StatementCache>(d)) {}
    ~ReadConnection() {
      cache.reset();  // statements before their connection
      sqlite3_close_v2(db);
    }
    sqlite3* const db;
    std::unique_ptr<StatementCache> cache;
  };

  // A read connection for the duration of one call.
  class Reader {
   public:
    Reader(Impl* impl, std::unique_ptr<ReadConnection> conn) : impl_(impl), conn_(std::move(conn)) {}
    Reader(Reader&& o) noexcept = default;
    ~Reader() {
      if (conn_ != nullptr) impl_->ReleaseReader(std::move(conn_));
    }
    sqlite3* db() const { return conn_->db; }
    // A statement prepared once per connection (see StatementCache).
    absl::StatusOr<Statement> Cached(absl::string_view sql) const { return conn_->cache->Get(sql); }

   private:
    Impl* impl_;
    std::unique_ptr<ReadConnection> conn_;
  };

  absl::StatusOr<Reader> AcquireReader() {
    {
      absl::MutexLock l(&pool_mu_);
      if (!idle_readers_.empty()) {
        std::unique_ptr<ReadConnection> conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return Reader(this, std::move(conn));
      }
    }
    HW_ASSIGN_OR_RETURN(sqlite3 * db, OpenConnection(db_path_, options_, /*reader=*/true));
    return Reader(this, std::make_unique<ReadConnection>(db));
  }

  void ReleaseReader(std::unique_ptr<ReadConnection> conn) {
    if (!sqlite3_get_autocommit(conn->db)) {
      sqlite3_exec(conn->db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    absl::MutexLock l(&pool_mu_);
    if (static_cast<int>(idle_readers_.size()) < options_.max_read_connections) {
      idle_readers_.push_back(std::move(conn));
    }  // else closed here
  }

  // Every face (ascending id) from one read transaction, with its descriptor or without it
  // (FaceRecord::descriptor null); returns the change seq that transaction includes.
  absl::StatusOr<int64_t> ScanFaces(bool with_descriptor,
                                    const std::function<absl::Status(const FaceRecord&)>& fn) {
    HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
    HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
    HW_ASSIGN_OR_RETURN(const int64_t seq, LastSeqIn(r.db()));
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(), absl::StrCat(AttributesSelect(with_descriptor),
                                                                "ORDER BY f.id")));
    float descriptor[kDescriptorDim];
    while (true) {
      HW_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (!with_descriptor) {
        HW_RETURN_IF_ERROR(fn(FaceRecord{ReadAttributes(q), nullptr}));
        continue;
      }
      const absl::string_view blob = q.Blob(14);
      if (blob.size() != sizeof(descriptor)) {
        return absl::DataLossError(
            absl::StrCat("face ", q.Int(0), " has a ", blob.size(), "-byte descriptor"));
      }
      std::memcpy(descriptor, blob.data(), sizeof(descriptor));
      HW_RETURN_IF_ERROR(fn(FaceRecord{ReadAttributes(q), descriptor}));
    }
    return seq;
  }

  // Opening steps after the schema is current: finish interrupted deletions (the journal),
  // then sweep orphan files on a thread of their own, so that a catalog with a million photo
  // files serves at once. Orphans come only from a crash between a photo's file and its row;
  // nothing waits for them.
  absl::Status Recover() {
    {
      absl::MutexLock l(&write_mu_);
      HW_RETURN_IF_ERROR(DrainUnlinkJournal());
    }
    if (!options_.sweep_orphan_files) {
      sweep_done_ = true;
      return absl::OkStatus();
    }
    sweeper_ = std::thread([this] {
      absl::Status s = SweepOrphans();
      if (!s.ok()) {
        std::fprintf(stderr, "homeward: the orphan photo sweep stopped: %s\n",
                     std::string(s.message()).c_str());
      }
      sweep_done_ = true;
    });
    return absl::OkStatus();
  }

  // Removes the files under photos/ that no row names. A file is judged under write_mu_: every
  // write holds it from the file's creation to the commit of the row that names it, so a file
  // of a photo being added is never taken for an orphan. The lock is taken per batch of files,
  // so writers wait at most one batch.
  absl::Status SweepOrphans() {
    std::vector<std::string> files;
    HW_RETURN_IF_ERROR(
        internal::WalkFiles(photos_dir_, [&](const std::string& rel) { files.push_back(rel); }));
    constexpr size_t kBatch = 256;
    for (size_t begin = 0; begin < files.size() && !stop_sweep_; begin += kBatch) {
      absl::MutexLock l(&write_mu_);
      HW_ASSIGN_OR_RETURN(
          Statement q,
          Statement::Prepare(writer_, "SELECT 1 FROM photos WHERE sha256 = ? LIMIT 1"));
      for (size_t i = begin; i < std::min(files.size(), begin + kBatch); ++i) {
        const std::string& rel = files[i];
        const size_t slash = rel.rfind('/');
        const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
        bool keep = false;
        if (internal::IsSha256Hex(base) && internal::FileNameForHash(base) == rel) {
          q.Reset();
          HW_ASSIGN_OR_RETURN(keep, q.BindText(1, base).Step());
        }
        if (!keep) HW_RETURN_IF_ERROR(internal::UnlinkDurably(photos_dir_, rel));
      }
    }
    return absl::OkStatus();
  }

  // Unlinks every journaled file no photo row references, then clears its journal row.
  absl::Status DrainUnlinkJournal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    std::vector<std::string> names;
    {
      HW_ASSIGN_OR_RETURN(Statement q,
                          Statement::Prepare(writer_, "SELECT file_name FROM pending_unlink"));
      while (true) {
        HW_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        names.push_back(q.Text(0));
      }
    }
    if (names.empty()) return absl::OkStatus();
    HW_ASSIGN_OR_RETURN(Statement ref,
                        Statement::Prepare(writer_, "SELECT 1 FROM photos WHERE file_name = ?"));
    HW_ASSIGN_OR_RETURN(
        Statement del,
        Statement::Prepare(writer_, "DELETE FROM pending_unlink WHERE file_name = ?"));
    for (const std::string& name : names) {
      ref.Reset();
      HW_ASSIGN_OR_RETURN(bool referenced, ref.BindText(1, name).Step());
      // Only names this code wrote are journaled; re-check anyway before touching the disk.
      const size_t slash = name.rfind('/');
      const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
      if (!referenced && internal::IsSha256Hex(base) && internal::FileNameForHash(base) == name) {
        HW_RETURN_IF_ERROR(internal::UnlinkDurably(photos_dir_, name));
      }
      del.Reset();
      HW_RETURN_IF_ERROR(del.BindText(1, name).Run());
    }
    return absl::OkStatus();
  }

  // Deletes the photos selected by `photo_where` (a fixed SQL fragment on table p with one
  // parameter, `id`), their faces, and the case too when delete_case. Rows, 'remove' changes
  // and the unlink journal commit together; files are unlinked after.
  absl::Status DeleteRows(int64_t id, const char* photo_where, bool delete_case) {
    absl::MutexLock l(&write_mu_);
    {
      Transaction txn(writer_);
      HW_RETURN_IF_ERROR(txn.status());
      {
        HW_ASSIGN_OR_RETURN(
            Statement q,
            Statement::Prepare(writer_, delete_case ? "SELECT 1 FROM cases WHERE id = ?"
                                                    : "SELECT 1 FROM photos WHERE id = ?"));
        HW_ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
        if (!found) {
          return absl::NotFoundError(
              absl::StrCat(delete_case ? "case " : "photo ", id, " does not exist"));
        }
      }
      std::vector<std::pair<std::string, std::string>> files;  // (sha256, file_name)
      {
        HW_ASSIGN_OR_RETURN(
            Statement q,
            Statement::Prepare(writer_, absl::StrCat("SELECT DISTINCT sha256, file_name "
                                                     "FROM photos p WHERE ",
                                                     photo_where)));
        q.Bind(1, id);
        while (true) {
          HW_ASSIGN_OR_RETURN(bool row, q.Step());
          if (!row) break;
          files.emplace_back(q.Text(0), q.Text(1));
        }
      }
      // Leads first (they reference faces and cases): evidence naming a deleted face goes, a
      // lead keeps its best remaining pair or goes with its reviews when none remains.
      const std::string face_ids = absl::StrCat(
          "SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE ", photo_where);
      std::vector<std::string> lead_sql = {
          absl::StrCat("DELETE FROM sighting_clusters WHERE face_id IN (", face_ids, ")"),
          absl::StrCat("DELETE FROM lead_evidence WHERE face_a IN (", face_ids,
                       ") OR face_b IN (", face_ids, ")"),
          absl::StrCat("UPDATE leads SET (face_a, face_b, distance, confidence) = (SELECT "
                       "e.face_a, e.face_b, e.distance, e.confidence FROM lead_evidence e WHERE "
                       "e.lead_id = leads.id ORDER BY e.confidence DESC, e.id LIMIT 1) WHERE "
                       "(face_a IN (",
                       face_ids, ") OR face_b IN (", face_ids,
                       ")) AND EXISTS (SELECT 1 FROM lead_evidence e WHERE e.lead_id = leads.id)")};
      if (delete_case) {
        lead_sql.push_back(
            "DELETE FROM lead_evidence WHERE lead_id IN (SELECT id FROM leads WHERE case_a = ?1 "
            "OR case_b = ?1)");
      }
      for (const std::string& sql : lead_sql) {
        HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(writer_, sql));
        HW_RETURN_IF_ERROR(q.Bind(1, id).Run());
      }
      for (const char* sql :
           {"DELETE FROM lead_reviews WHERE lead_id IN (SELECT l.id FROM leads l WHERE NOT "
            "EXISTS (SELECT 1 FROM lead_evidence e WHERE e.lead_id = l.id))",
            "DELETE FROM leads WHERE NOT EXISTS (SELECT 1 FROM lead_evidence e WHERE "
            "e.lead_id = leads.id)"}) {
        HW_RETURN_IF_ERROR(internal::Exec(writer_, sql));
      }
      const std::string photo_ids = absl::StrCat("SELECT p.id FROM photos p WHERE ", photo_where);
      for (const std::string& sql :
           {absl::StrCat("INSERT INTO changes (op, face_id, kind) SELECT 'remove', f.id, c.kind "
                         "FROM faces f JOIN photos p ON p.id = f.photo_id JOIN cases c ON "
                         "c.id = p.case_id WHERE ",
                         photo_where, " ORDER BY f.id"),
            absl::StrCat("DELETE FROM faces WHERE photo_id IN (", photo_ids, ")"),
            absl::StrCat("DELETE FROM photos WHERE id IN (", photo_ids, ")")}) {
        HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(writer_, sql));
        HW_RETURN_IF_ERROR(q.Bind(1, id).Run());
      }
      if (delete_case) {
        HW_ASSIGN_OR_RETURN(Statement q,
                            Statement::Prepare(writer_, "DELETE FROM cases WHERE id = ?"));
        HW_RETURN_IF_ERROR(q.Bind(1, id).Run());
      }
      // A file shared with another case's photo stays.
      HW_ASSIGN_OR_RETURN(Statement ref,
                          Statement::Prepare(writer_, "SELECT 1 FROM photos WHERE sha256 = ?"));
      HW_ASSIGN_OR_RETURN(
          Statement journal,
          Statement::Prepare(writer_,
                             "INSERT OR IGNORE INTO pending_unlink (file_name) VALUES (?)"));
      for (const auto& [sha, name] : files) {
        ref.Reset();
        HW_ASSIGN_OR_RETURN(bool shared, ref.BindText(1, sha).Step());
        if (shared) continue;
        journal.Reset();
        HW_RETURN_IF_ERROR(journal.BindText(1, name).Run());
      }
      HW_RETURN_IF_ERROR(txn.Commit());
    }
    HW_RETURN_IF_ERROR(DrainUnlinkJournal());
    // Move the zeroed (secure_delete) pages into the database file and truncate the WAL, so
    // the deleted rows linger in neither. A read in flight holds an older snapshot that
    // pins both: wait for it up to busy_timeout_ms (reads are short); if one outlasts that,
    // the rows stay until the next checkpoint or close (tests/deletion_trace_test.cc).
    sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    return absl::OkStatus();
  }

  const std::string data_dir_, photos_dir_, db_path_;
  const CatalogOptions options_;
  const int lock_fd_;

  absl::Mutex write_mu_;
  sqlite3* const writer_ ABSL_PT_GUARDED_BY(write_mu_);

  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<ReadConnection>> idle_readers_ ABSL_GUARDED_BY(pool_mu_);

  std::atomic<bool> stop_sweep_{false}, sweep_done_{false};
  std::thread sweeper_;  // SweepOrphans after Open; joined by the destructor
};

// ---- Catalog ------------------------------------------------------------------------------

Catalog::Catalog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
bool Catalog::orphan_sweep_done() const { return impl_->sweep_done_; }
Catalog::~Catalog() = default;

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(const std::string& data_dir,
                                                       const CatalogOptions& options) {
  if (data_dir.empty()) return absl::InvalidArgumentError("data_dir is empty");
  if (options.busy_timeout_ms < 0 || options.max_read_connections < 0) {
    return absl::InvalidArgumentError("busy_timeout_ms and max_read_connections must be >= 0");
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return ec.value() == ENOSPC
               ? absl::ResourceExhaustedError(ec.message())
               : absl::InternalError(absl::StrCat("create ", data_dir, ": ", ec.message()));
  }
  HW_RETURN_IF_ERROR(internal::EnsureDir(data_dir + "/photos"));

  const std::string lock_path = data_dir + "/LOCK";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return absl::FailedPreconditionError(
        absl::StrCat(data_dir, " is in use by another Catalog (", lock_path, " is locked)"));
  }
  absl::StatusOr<sqlite3*> writer = OpenConnection(data_dir + "/catalog.db", options, false);
  if (!writer.ok()) {
    ::close(lock_fd);
    return writer.status();
  }
  // From here the Impl owns the lock and the connection.
  auto impl = std::make_unique<Impl>(data_dir, options, lock_fd, *writer);
  {
    absl::MutexLock l(&impl->write_mu_);
    HW_RETURN_IF_ERROR(internal::Migrate(impl->writer_));
  }
  HW_RETURN_IF_ERROR(impl->Recover());
  return std::unique_ptr<Catalog>(new Catalog(std::move(impl)));
}

absl::StatusOr<int64_t> Catalog::AddCase(const Case& c) {
  HW_RETURN_IF_ERROR(ValidateCase(c));
  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(db,
                         "INSERT INTO cases (kind, display_name, sex, date_of_birth, "
                         "birth_year_min, birth_year_max, event_date, place, notes, "
                         "reporter_contact, owner_key_id, status, created_ms, updated_ms, id) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HW_NEXT_ID_SQL("cases")
                         ")"));
  BindCase(q, c);
  const int64_t now = NowMs();
  HW_RETURN_IF_ERROR(q.Bind(13, now).Bind(14, now).Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db));
}

absl::StatusOr<Case> Catalog::GetCase(int64_t id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(
      Statement q, r.Cached(absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE id = ?")));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("case ", id, " does not exist"));
  return ReadCase(q);
}

absl::Status Catalog::UpdateCase(const Case& c) {
  HW_RETURN_IF_ERROR(ValidateCase(c));
  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  {
    HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, "SELECT kind FROM cases WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, c.id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("case ", c.id, " does not exist"));
    if (q.Int(0) != static_cast<int>(c.kind)) {
      return absl::InvalidArgumentError(
          "a case's kind cannot change; create a new case of the other kind instead");
    }
  }
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(db,
                         "UPDATE cases SET kind = ?, display_name = ?, sex = ?, date_of_birth = ?, "
                         "birth_year_min = ?, birth_year_max = ?, event_date = ?, place = ?, "
                         "notes = ?, reporter_contact = ?, owner_key_id = ?, status = ?, "
                         "updated_ms = ? WHERE id = ?"));
  BindCase(q, c);
  HW_RETURN_IF_ERROR(q.Bind(13, NowMs()).Bind(14, c.id).Run());
  return txn.Commit();
}

absl::StatusOr<CasePage> Catalog::ListCases(const CaseQuery& query) {
  if (query.page_size < 1 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be 1..", kMaxPageSize, "; got ", query.page_size));
  }
  int64_t after = 0;
  if (!query.page_token.empty() && (!absl::SimpleAtoi(query.page_token, &after) || after < 0)) {
    return absl::InvalidArgumentError("page_token is not one this catalog returned");
  }
  if (query.kind && !ValidKind(*query.kind)) {
    return absl::InvalidArgumentError("kind must be kMissing, kFound or kSighting");
  }
  if (query.status && !ValidStatus(*query.status)) {
    return absl::InvalidArgumentError("status must be kOpen, kReunited, kClosed or kWithdrawn");
  }
  HW_RETURN_IF_ERROR(CheckDate("event_from", query.event_from));
  HW_RETURN_IF_ERROR(CheckDate("event_to", query.event_to));
  HW_RETURN_IF_ERROR(CheckText("place_contains", query.place_contains, kMaxPlaceBytes));

  // Fixed fragments only; every value is a bound parameter.
  std::string sql = absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE id > ?1");
  if (query.kind) absl::StrAppend(&sql, " AND kind = ?2");
  if (query.status) absl::StrAppend(&sql, " AND status = ?3");
  if (!query.place_contains.empty()) {
    absl::StrAppend(&sql, " AND instr(lower(coalesce(place, '')), lower(?4)) > 0");
  }
  if (!query.event_from.empty()) absl::StrAppend(&sql, " AND event_date >= ?5");
  if (!query.event_to.empty()) absl::StrAppend(&sql, " AND event_date <= ?6");
  if (query.owner_key_id) absl::StrAppend(&sql, " AND owner_key_id = ?8");
  absl::StrAppend(&sql, " ORDER BY id LIMIT ?7");

  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(r.db(), sql));
  q.Bind(1, after);
  if (query.kind) q.Bind(2, static_cast<int>(*query.kind));
  if (query.status) q.Bind(3, static_cast<int>(*query.status));
  if (!query.place_contains.empty()) q.BindText(4, query.place_contains);
  if (!query.event_from.empty()) q.BindText(5, query.event_from);
  if (!query.event_to.empty()) q.BindText(6, query.event_to);
  q.Bind(7, query.page_size + 1);
  if (query.owner_key_id) q.BindText(8, *query.owner_key_id);
  CasePage page;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    if (static_cast<int>(page.cases.size()) == query.page_size) {
      page.next_page_token = absl::StrCat(page.cases.back().id);
      break;
    }
    page.cases.push_back(ReadCase(q));
  }
  return page;
}

namespace {
// Rows of (kind, cases, photos, faces), every kind present (zeros for a kind without rows).
absl::StatusOr<std::map<CaseKind, KindCounts>> ReadKindCounts(Statement& q) {
  std::map<CaseKind, KindCounts> counts = {
      {CaseKind::kMissing, {}}, {CaseKind::kFound, {}}, {CaseKind::kSighting, {}}};
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    counts[static_cast<CaseKind>(q.Int(0))] = {q.Int(1), q.Int(2), q.Int(3)};
  }
  return counts;
}
}  // namespace

absl::StatusOr<std::map<CaseKind, KindCounts>> Catalog::CountByKind() {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, r.Cached("SELECT kind, cases, photos, faces FROM kind_counts"));
  return ReadKindCounts(q);
}

absl::StatusOr<std::map<CaseKind, KindCounts>> Catalog::CountByKindForOwner(
    const std::string& owner_key_id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  HW_ASSIGN_OR_RETURN(
      Statement q,
      r.Cached("SELECT c.kind, count(DISTINCT c.id), count(DISTINCT p.id), count(f.id) "
               "FROM cases c LEFT JOIN photos p ON p.case_id = c.id "
               "LEFT JOIN faces f ON f.photo_id = p.id WHERE c.owner_key_id = ? GROUP BY c.kind"));
  q.BindText(1, owner_key_id);
  return ReadKindCounts(q);  // the Reader's release ends the read transaction
}

absl::Status Catalog::DeleteCase(int64_t id) {
  return impl_->DeleteRows(id, "p.case_id = ?1", /*delete_case=*/true);
}

absl::Status Catalog::DeletePhoto(int64_t id) {
  return impl_->DeleteRows(id, "p.id = ?1", /*delete_case=*/false);
}

namespace {

// The kind of case `case_id` (its stored int); NOT_FOUND if there is no such case.
absl::StatusOr<int> CaseKindOf(sqlite3* db, int64_t case_id) {
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, "SELECT kind FROM cases WHERE id = ?"));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, case_id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("case ", case_id, " does not exist"));
  return static_cast<int>(q.Int(0));
}

// If case `case_id` already holds a photo with digest `sha`, fills *result with it and its
// faces (duplicate=true) and returns true.
absl::StatusOr<bool> FindDuplicate(sqlite3* db, const std::string& sha, int64_t case_id,
                                   AddPhotoResult* result) {
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(db, "SELECT id FROM photos WHERE sha256 = ? AND case_id = ? LIMIT 1"));
  HW_ASSIGN_OR_RETURN(bool dup, q.BindText(1, sha).Bind(2, case_id).Step());
  if (!dup) return false;
  result->photo_id = q.Int(0);
  result->duplicate = true;
  HW_ASSIGN_OR_RETURN(Statement f,
                      Statement::Prepare(db, "SELECT id FROM faces WHERE photo_id = ? ORDER BY id"));
  f.Bind(1, result->photo_id);
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, f.Step());
    if (!row) break;
    result->face_ids.push_back(f.Int(0));
  }
  return true;
}

// Removes a photo file written for rows that were not committed, unless another photo row
// shares it (best effort; Open sweeps too).
void UnlinkIfUnreferenced(sqlite3* db, const std::string& photos_dir, const std::string& sha,
                          const std::string& file_name) {
  absl::StatusOr<Statement> ref =
      Statement::Prepare(db, "SELECT 1 FROM photos WHERE sha256 = ? LIMIT 1");
  if (!ref.ok()) return;
  absl::StatusOr<bool> shared = ref->BindText(1, sha).Step();
  if (shared.ok() && !*shared) internal::UnlinkDurably(photos_dir, file_name).IgnoreError();
}

// Inserts photo rows, their faces and a kAdd change per face inside the caller's
// transaction; the statements are prepared once and reused for every photo of a batch.
class PhotoRowWriter {
 public:
  static absl::StatusOr<PhotoRowWriter> Prepare(sqlite3* db) {
    HW_ASSIGN_OR_RETURN(
        Statement p,
        Statement::Prepare(db,
                           "INSERT INTO photos (case_id, date_taken, age_min, age_max, "
                           "age_estimated, source, width, height, sha256, file_name, created_ms, "
                           "id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HW_NEXT_ID_SQL("photos")
                           ")"));
    HW_ASSIGN_OR_RETURN(
        Statement f,
        Statement::Prepare(db,
                           "INSERT INTO faces (photo_id, box_x, box_y, box_w, box_h, landmarks, "
                           "width_px, sharpness, yaw, usable, detector_score, descriptor, "
                           "model_id, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                           HW_NEXT_ID_SQL("faces") ")"));
    HW_ASSIGN_OR_RETURN(
        Statement c,
        Statement::Prepare(db, "INSERT INTO changes (op, face_id, kind) VALUES ('add', ?, ?)"));
    HW_ASSIGN_OR_RETURN(Statement u,
                        Statement::Prepare(db, "UPDATE cases SET updated_ms = ? WHERE id = ?"));
    return PhotoRowWriter(db, std::move(p), std::move(f), std::move(c), std::move(u));
  }

  // Sets result->photo_id and appends the new face ids in the order given.
  absl::Status Insert(const Photo& meta, const std::string& sha, const std::string& file_name,
                      int kind, const std::vector<Face>& faces, AddPhotoResult* result) {
    photo_.Reset();
    photo_.Bind(1, meta.case_id).BindTextOrNull(2, meta.date_taken);
    if (meta.age_min < 0) {
      photo_.BindNull(3).BindNull(4);
    } else {
      photo_.Bind(3, meta.age_min).Bind(4, meta.age_max);
    }
    photo_.Bind(5, meta.age_estimated ? 1 : 0)
        .BindTextOrNull(6, meta.source)
        .Bind(7, meta.width)
        .Bind(8, meta.height)
        .BindText(9, sha)
        .BindText(10, file_name)
        .Bind(11, NowMs());
    HW_RETURN_IF_ERROR(photo_.Run());
    result->photo_id = sqlite3_last_insert_rowid(db_);
    for (const Face& face : faces) {
      face_.Reset();
      face_.Bind(1, result->photo_id)
          .Bind(2, face.box_x)
          .Bind(3, face.box_y)
          .Bind(4, face.box_w)
          .Bind(5, face.box_h)
          .BindBlob(6, face.landmarks.data(), face.landmarks.size() * sizeof(float))
          .Bind(7, static_cast<double>(face.width_px))
          .Bind(8, static_cast<double>(face.sharpness))
          .Bind(9, static_cast<double>(face.yaw_deg))
          .Bind(10, face.usable ? 1 : 0)
          .Bind(11, static_cast<double>(face.detector_score))
          .BindBlob(12, face.descriptor.data(), face.descriptor.size() * sizeof(float))
          .BindTextOrNull(13, face.model_id);
      HW_RETURN_IF_ERROR(face_.Run());
      const int64_t face_id = sqlite3_last_insert_rowid(db_);
      result->face_ids.push_back(face_id);
      change_.Reset();
      HW_RETURN_IF_ERROR(change_.Bind(1, face_id).Bind(2, kind).Run());
    }
    touch_case_.Reset();
    return touch_case_.Bind(1, NowMs()).Bind(2, meta.case_id).Run();
  }

 private:
  PhotoRowWriter(sqlite3* db, Statement p, Statement f, Statement c, Statement u)
      : db_(db), photo_(std::move(p)), face_(std::move(f)), change_(std::move(c)),
        touch_case_(std::move(u)) {}
  sqlite3* db_;
  Statement photo_, face_, change_, touch_case_;
};

}  // namespace

absl::StatusOr<AddPhotoResult> Catalog::AddPhoto(const Photo& meta, const std::string& bytes,
                                                 const std::vector<Face>& faces) {
  HW_RETURN_IF_ERROR(ValidatePhoto(meta, bytes));
  for (size_t i = 0; i < faces.size(); ++i) HW_RETURN_IF_ERROR(ValidateFace(faces[i], i));
  const std::string sha = internal::Sha256Hex(bytes);
  const std::string file_name = internal::FileNameForHash(sha);

  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  HW_ASSIGN_OR_RETURN(int kind, CaseKindOf(db, meta.case_id));
  AddPhotoResult result;
  HW_ASSIGN_OR_RETURN(bool dup, FindDuplicate(db, sha, meta.case_id, &result));
  if (dup) return result;

  // The file is durable before any row names it; a crash in between leaves an orphan file
  // that Open sweeps.
  HW_RETURN_IF_ERROR(internal::WriteFileDurably(impl_->photos_dir_, file_name, bytes));

  absl::Status s = [&]() -> absl::Status {
    Transaction txn(db);
    HW_RETURN_IF_ERROR(txn.status());
    HW_ASSIGN_OR_RETURN(PhotoRowWriter writer, PhotoRowWriter::Prepare(db));
    HW_RETURN_IF_ERROR(writer.Insert(meta, sha, file_name, kind, faces, &result));
    return txn.Commit();
  }();
  if (!s.ok()) {
    UnlinkIfUnreferenced(db, impl_->photos_dir_, sha, file_name);
    return s;
  }
  return result;
}

absl::StatusOr<std::vector<AddPhotoResult>> Catalog::AddPhotoBatch(
    const std::vector<PhotoToAdd>& photos) {
  struct Prepared {
    std::string sha, file_name;
    int kind = 0;
  };
  std::vector<Prepared> prepared(photos.size());
  for (size_t i = 0; i < photos.size(); ++i) {
    const PhotoToAdd& p = photos[i];
    absl::Status valid = ValidatePhoto(p.meta, p.bytes);
    for (size_t j = 0; valid.ok() && j < p.faces.size(); ++j) valid = ValidateFace(p.faces[j], j);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("photos[", i, "]: ", valid.message()));
    }
    prepared[i].sha = internal::Sha256Hex(p.bytes);
    prepared[i].file_name = internal::FileNameForHash(prepared[i].sha);
  }

  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  std::map<int64_t, int> kinds;
  for (size_t i = 0; i < photos.size(); ++i) {
    const int64_t case_id = photos[i].meta.case_id;
    auto kind = kinds.find(case_id);
    if (kind == kinds.end()) {
      HW_ASSIGN_OR_RETURN(int k, CaseKindOf(db, case_id));
      kind = kinds.emplace(case_id, k).first;
    }
    prepared[i].kind = kind->second;
  }
  // Every file is durable before the one transaction that names them (as in AddPhoto).
  std::vector<size_t> written;  // entries whose file this call wrote
  std::vector<AddPhotoResult> results(photos.size());
  absl::Status s = [&]() -> absl::Status {
    std::set<std::string> seen;
    for (size_t i = 0; i < photos.size(); ++i) {
      AddPhotoResult unused;
      HW_ASSIGN_OR_RETURN(bool dup,
                          FindDuplicate(db, prepared[i].sha, photos[i].meta.case_id, &unused));
      if (dup || !seen.insert(prepared[i].sha).second) continue;
      written.push_back(i);
      HW_RETURN_IF_ERROR(internal::WriteFileDurably(impl_->photos_dir_, prepared[i].file_name,
                                                    photos[i].bytes));
    }
    Transaction txn(db);
    HW_RETURN_IF_ERROR(txn.status());
    HW_ASSIGN_OR_RETURN(PhotoRowWriter writer, PhotoRowWriter::Prepare(db));
    for (size_t i = 0; i < photos.size(); ++i) {
      // Sees this batch's earlier rows too: repeated bytes in one case are stored once.
      HW_ASSIGN_OR_RETURN(bool dup,
                          FindDuplicate(db, prepared[i].sha, photos[i].meta.case_id, &results[i]));
      if (dup) continue;
      HW_RETURN_IF_ERROR(writer.Insert(photos[i].meta, prepared[i].sha, prepared[i].file_name,
                                       prepared[i].kind, photos[i].faces, &results[i]));
    }
    return txn.Commit();
  }();
  if (!s.ok()) {
    for (size_t w : written) {
      UnlinkIfUnreferenced(db, impl_->photos_dir_, prepared[w].sha, prepared[w].file_name);
    }
    return s;
  }
  return results;
}

absl::StatusOr<Photo> Catalog::GetPhotoInfo(int64_t id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(), absl::StrCat("SELECT ", kPhotoColumns,
                                                              " FROM photos WHERE id = ?")));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("photo ", id, " does not exist"));
  return ReadPhoto(q);
}

absl::StatusOr<Catalog::PhotoWithBytes> Catalog::GetPhoto(int64_t id) {
  PhotoWithBytes out;
  HW_ASSIGN_OR_RETURN(out.photo, GetPhotoInfo(id));
  if (!internal::IsSha256Hex(out.photo.sha256) ||
      internal::FileNameForHash(out.photo.sha256) != out.photo.file_name) {
    return absl::DataLossError(absl::StrCat("photo ", id, " has a malformed file name"));
  }
  absl::StatusOr<std::string> bytes =
      internal::ReadWholeFile(absl::StrCat(impl_->photos_dir_, "/", out.photo.file_name));
  if (absl::IsNotFound(bytes.status())) {
    // Deleted since the row was read, or lost.
    HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(), "SELECT 1 FROM photos WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("photo ", id, " does not exist"));
    return absl::DataLossError(absl::StrCat("photo ", id, "'s file is missing"));
  }
  HW_RETURN_IF_ERROR(bytes.status());
  if (internal::Sha256Hex(*bytes) != out.photo.sha256) {
    return absl::DataLossError(absl::StrCat("photo ", id, "'s file does not match its hash"));
  }
  out.bytes = *std::move(bytes);
  return out;
}

absl::StatusOr<std::vector<Photo>> Catalog::ListPhotos(int64_t case_id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(), "SELECT 1 FROM cases WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, case_id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("case ", case_id, " does not exist"));
  }
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(r.db(), absl::StrCat("SELECT ", kPhotoColumns,
                                              " FROM photos WHERE case_id = ? ORDER BY id")));
  q.Bind(1, case_id);
  std::vector<Photo> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ReadPhoto(q));
  }
  return out;
}

absl::StatusOr<Face> Catalog::GetFace(int64_t face_id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(
      Statement q,
      r.Cached(absl::StrCat("SELECT ", kFaceColumns, " FROM faces WHERE id = ?")));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, face_id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("face ", face_id, " does not exist"));
  return ReadFace(q);
}

absl::StatusOr<std::vector<Face>> Catalog::ListFaces(int64_t photo_id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(), "SELECT 1 FROM photos WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, photo_id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("photo ", photo_id, " does not exist"));
  }
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(r.db(), absl::StrCat("SELECT ", kFaceColumns,
                                              " FROM faces WHERE photo_id = ? ORDER BY id")));
  q.Bind(1, photo_id);
  std::vector<Face> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ReadFace(q));
  }
  return out;
}

absl::StatusOr<int64_t> Catalog::ForEachFaceAttributes(
    const std::function<absl::Status(const FaceRecord&)>& fn) {
  return impl_->ScanFaces(/*with_descriptor=*/false, fn);
}

absl::StatusOr<int64_t> Catalog::ForEachFace(
    const std::function<absl::Status(const FaceRecord&)>& fn) {
  return impl_->ScanFaces(/*with_descriptor=*/true, fn);
}

absl::StatusOr<std::vector<FaceAttributes>> Catalog::GetFaceAttributes(
    const std::vector<int64_t>& ids) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  HW_ASSIGN_OR_RETURN(
      Statement q, r.Cached(absl::StrCat(AttributesSelect(false), "WHERE f.id = ?")));
  std::vector<FaceAttributes> out;
  out.reserve(ids.size());
  for (int64_t id : ids) {
    q.Reset();
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (row) out.push_back(ReadAttributes(q));
  }
  return out;
}

absl::StatusOr<std::vector<Change>> Catalog::ChangesAfter(int64_t after_seq, int limit) {
  if (limit < 1 || limit > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..100000; got ", limit));
  }
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(),
                                         "SELECT seq, op, face_id, kind FROM changes WHERE seq > ? "
                                         "ORDER BY seq LIMIT ?"));
  q.Bind(1, after_seq).Bind(2, limit);
  std::vector<Change> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(Change{q.Int(0), q.Text(1) == "add" ? ChangeOp::kAdd : ChangeOp::kRemove,
                         q.Int(2), static_cast<CaseKind>(q.Int(3))});
  }
  return out;
}

absl::StatusOr<int64_t> Catalog::LastChangeSeq() {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(), "SELECT coalesce(max(seq), 0) FROM changes"));
  HW_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

absl::StatusOr<int64_t> Catalog::AppendAudit(const AuditEntry& e) {
  if (e.actor.empty() || e.action.empty()) {
    return absl::InvalidArgumentError("an audit entry needs an actor and an action");
  }
  HW_RETURN_IF_ERROR(CheckText("actor", e.actor, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("role", e.role, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("action", e.action, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("target_type", e.target_type, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("detail", e.detail, kMaxTextBytes));
  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  // An audit row is committed without waiting for fsync (synchronous=NORMAL for this one
  // commit): in WAL mode it survives a crash of the process, and reaches the disk with the
  // next durable commit or checkpoint; an OS crash or power loss may lose the last rows.
  // Waiting for the disk would put an fsync (1-10 ms here) into every search and view.
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = NORMAL"));
  auto insert = [&]() -> absl::Status {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "INSERT INTO audit (time_ms, actor, role, action, target_type, "
                           "target_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    return q.Bind(1, NowMs())
        .BindText(2, e.actor)
        .BindTextOrNull(3, e.role)
        .BindText(4, e.action)
        .BindTextOrNull(5, e.target_type)
        .Bind(6, e.target_id)
        .BindTextOrNull(7, e.detail)
        .Run();
  };
  const absl::Status inserted = insert();
  const int64_t row = sqlite3_last_insert_rowid(db);
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = FULL"));
  HW_RETURN_IF_ERROR(inserted);
  return row;
}

absl::Status Catalog::SaveGrants(const std::string& key_id, const std::vector<int64_t>& face_ids,
                                 int64_t expires_ms) {
  if (face_ids.empty()) return absl::OkStatus();
  HW_RETURN_IF_ERROR(CheckText("key_id", key_id, kMaxNameBytes));
  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  // Like an audit row, a grant need not wait for fsync: losing the last ones to a power cut
  // only means the volunteer's client searches again.
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = NORMAL"));
  auto save = [&]() -> absl::Status {
    Transaction txn(db);
    HW_RETURN_IF_ERROR(txn.status());
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(db, "INSERT OR REPLACE INTO candidate_grants (key_id, "
                                               "face_id, expires_ms) VALUES (?, ?, ?)"));
    for (int64_t id : face_ids) {
      q.Reset();
      HW_RETURN_IF_ERROR(q.BindText(1, key_id).Bind(2, id).Bind(3, expires_ms).Run());
    }
    return txn.Commit();
  };
  const absl::Status saved = save();
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = FULL"));
  return saved;
}

absl::StatusOr<std::vector<Catalog::Grant>> Catalog::LoadGrants(int64_t now_ms) {
  {
    absl::MutexLock l(&impl_->write_mu_);
    HW_ASSIGN_OR_RETURN(Statement del,
                        Statement::Prepare(impl_->writer_,
                                           "DELETE FROM candidate_grants WHERE expires_ms <= ?"));
    HW_RETURN_IF_ERROR(del.Bind(1, now_ms).Run());
  }
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(), "SELECT key_id, face_id, expires_ms FROM "
                                                 "candidate_grants ORDER BY expires_ms"));
  std::vector<Grant> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(Grant{q.Text(0), q.Int(1), q.Int(2)});
  }
  return out;
}

absl::StatusOr<std::vector<AuditEntry>> Catalog::ListAudit(int64_t after_id, int limit,
                                                           const std::string& target_type,
                                                           int64_t target_id) {
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..10000; got ", limit));
  }
  std::string sql =
      "SELECT id, time_ms, actor, role, action, target_type, target_id, detail FROM audit "
      "WHERE id > ?1";
  if (!target_type.empty()) absl::StrAppend(&sql, " AND target_type = ?2 AND target_id = ?3");
  absl::StrAppend(&sql, " ORDER BY id LIMIT ?4");
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(r.db(), sql));
  q.Bind(1, after_id).Bind(4, limit);
  if (!target_type.empty()) q.BindText(2, target_type).Bind(3, target_id);
  std::vector<AuditEntry> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    AuditEntry e;
    e.id = q.Int(0);
    e.time_ms = q.Int(1);
    e.actor = q.Text(2);
    e.role = q.Text(3);
    e.action = q.Text(4);
    e.target_type = q.Text(5);
    e.target_id = q.Int(6);
    e.detail = q.Text(7);
    out.push_back(std::move(e));
  }
  return out;
}


// ---- Leads --------------------------------------------------------------------------------

namespace {

constexpr char kLeadColumns[] =
    "l.id, l.case_a, l.case_b, l.face_a, l.face_b, l.distance, l.confidence, l.status, "
    "l.created_ms, l.updated_ms";

Lead ReadLead(const Statement& q) {
  Lead l;
  l.id = q.Int(0);
  l.case_a = q.Int(1);
  l.case_b = q.Int(2);
  l.face_a = q.Int(3);
  l.face_b = q.Int(4);
  l.distance = q.Real(5);
  l.confidence = q.Real(6);
  l.status = static_cast<LeadStatus>(q.Int(7));
  l.created_ms = q.Int(8);
  l.updated_ms = q.Int(9);
  return l;
}

bool ValidDecision(LeadStatus s) {
  return s == LeadStatus::kConfirmedForDna || s == LeadStatus::kRejected ||
         s == LeadStatus::kNeedsBetterPhoto;
}

const char* DecisionName(LeadStatus s) {
  switch (s) {
    case LeadStatus::kOpen: return "open";
    case LeadStatus::kConfirmedForDna: return "confirmed_for_dna";
    case LeadStatus::kRejected: return "rejected";
    case LeadStatus::kNeedsBetterPhoto: return "needs_better_photo";
  }
  return "unknown";
}

// The lead with its evidence and reviews, read on `db` (one transaction is the caller's).
absl::StatusOr<Lead> LoadLead(sqlite3* db, int64_t id) {
  Lead lead;
  {
    HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, absl::StrCat("SELECT ", kLeadColumns,
                                                                         " FROM leads l WHERE "
                                                                         "l.id = ?")));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("lead ", id, " does not exist"));
    lead = ReadLead(q);
  }
  {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "SELECT face_a, face_b, distance, confidence, time_ms FROM "
                           "lead_evidence WHERE lead_id = ? ORDER BY id"));
    q.Bind(1, id);
    while (true) {
      HW_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      lead.evidence.push_back(LeadEvidence{q.Int(0), q.Int(1), q.Real(2), q.Real(3), q.Int(4)});
    }
  }
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(db,
                                         "SELECT decision, note, reviewer, time_ms FROM "
                                         "lead_reviews WHERE lead_id = ? ORDER BY id"));
  q.Bind(1, id);
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    lead.reviews.push_back(
        LeadReview{static_cast<LeadStatus>(q.Int(0)), q.Text(1), q.Text(2), q.Int(3)});
  }
  return lead;
}

}  // namespace

absl::StatusOr<LeadUpsertResult> Catalog::UpsertLead(int64_t face_x, int64_t face_y,
                                                     double distance, double confidence) {
  if (!std::isfinite(distance) || distance < 0 || !(confidence >= 0 && confidence <= 1)) {
    return absl::InvalidArgumentError(
        "a lead needs a finite distance >= 0 and a confidence in 0..1");
  }
  struct Side {
    int64_t face = 0, case_id = 0;
    std::string key;  // the photo content and the face in it: "sha256/x,y,w,h"
  };
  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  HW_ASSIGN_OR_RETURN(
      Statement side_q,
      Statement::Prepare(db,
                         "SELECT p.case_id, p.sha256, f.box_x, f.box_y, f.box_w, f.box_h FROM "
                         "faces f JOIN photos p ON p.id = f.photo_id WHERE f.id = ?"));
  auto side = [&](int64_t face) -> absl::StatusOr<Side> {
    side_q.Reset();
    HW_ASSIGN_OR_RETURN(bool row, side_q.Bind(1, face).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("face ", face, " does not exist"));
    return Side{face, side_q.Int(0),
                absl::StrCat(side_q.Text(1), "/", side_q.Int(2), ",", side_q.Int(3), ",",
                             side_q.Int(4), ",", side_q.Int(5))};
  };
  HW_ASSIGN_OR_RETURN(Side a, side(face_x));
  HW_ASSIGN_OR_RETURN(Side b, side(face_y));
  if (a.case_id == b.case_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("faces ", face_x, " and ", face_y, " belong to one case; a lead joins two"));
  }
  if (a.case_id > b.case_id) std::swap(a, b);

  bool suppressed = false;
  {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "SELECT 1 FROM lead_evidence e JOIN leads l ON l.id = e.lead_id "
                           "WHERE l.status = ?3 AND ((e.key_a = ?1 AND e.key_b = ?2) OR "
                           "(e.key_a = ?2 AND e.key_b = ?1)) LIMIT 1"));
    HW_ASSIGN_OR_RETURN(suppressed, q.BindText(1, a.key)
                                        .BindText(2, b.key)
                                        .Bind(3, static_cast<int>(LeadStatus::kRejected))
                                        .Step());
  }
  const int64_t now = NowMs();
  LeadUpsertResult result;
  {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(
            db, "SELECT id, status, confidence FROM leads WHERE case_a = ? AND case_b = ?"));
    HW_ASSIGN_OR_RETURN(bool exists, q.Bind(1, a.case_id).Bind(2, b.case_id).Step());
    if (!exists) {
      if (suppressed) return LeadUpsertResult{0, LeadUpsert::kSuppressed};
      HW_ASSIGN_OR_RETURN(
          Statement ins,
          Statement::Prepare(db,
                             "INSERT INTO leads (case_a, case_b, face_a, face_b, distance, "
                             "confidence, status, created_ms, updated_ms, id) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, " HW_NEXT_ID_SQL("leads") ")"));
      HW_RETURN_IF_ERROR(ins.Bind(1, a.case_id)
                             .Bind(2, b.case_id)
                             .Bind(3, a.face)
                             .Bind(4, b.face)
                             .Bind(5, distance)
                             .Bind(6, confidence)
                             .Bind(7, static_cast<int>(LeadStatus::kOpen))
                             .Bind(8, now)
                             .Bind(9, now)
                             .Run());
      result = {static_cast<int64_t>(sqlite3_last_insert_rowid(db)), LeadUpsert::kCreated};
    } else {
      result.lead_id = q.Int(0);
      const auto status = static_cast<LeadStatus>(q.Int(1));
      const double best = q.Real(2);
      HW_ASSIGN_OR_RETURN(
          Statement seen,
          Statement::Prepare(db,
                             "SELECT 1 FROM lead_evidence WHERE lead_id = ? AND face_a = ? AND "
                             "face_b = ?"));
      HW_ASSIGN_OR_RETURN(bool known,
                          seen.Bind(1, result.lead_id).Bind(2, a.face).Bind(3, b.face).Step());
      if (known) return LeadUpsertResult{result.lead_id, LeadUpsert::kUnchanged};
      if (suppressed) return LeadUpsertResult{result.lead_id, LeadUpsert::kSuppressed};
      const bool reopen =
          status == LeadStatus::kRejected || status == LeadStatus::kNeedsBetterPhoto;
      result.outcome = reopen ? LeadUpsert::kReopened : LeadUpsert::kEvidenceAdded;
      HW_ASSIGN_OR_RETURN(
          Statement up,
          Statement::Prepare(
              db, confidence > best
                      ? "UPDATE leads SET status = ?1, updated_ms = ?2, face_a = ?3, face_b = ?4, "
                        "distance = ?5, confidence = ?6 WHERE id = ?7"
                      : "UPDATE leads SET status = ?1, updated_ms = ?2 WHERE id = ?7"));
      up.Bind(1, static_cast<int>(reopen ? LeadStatus::kOpen : status))
          .Bind(2, now)
          .Bind(7, result.lead_id);
      if (confidence > best) {
        up.Bind(3, a.face).Bind(4, b.face).Bind(5, distance).Bind(6, confidence);
      }
      HW_RETURN_IF_ERROR(up.Run());
    }
  }
  HW_ASSIGN_OR_RETURN(
      Statement ev,
      Statement::Prepare(db,
                         "INSERT INTO lead_evidence (lead_id, face_a, face_b, key_a, key_b, "
                         "distance, confidence, time_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  HW_RETURN_IF_ERROR(ev.Bind(1, result.lead_id)
                         .Bind(2, a.face)
                         .Bind(3, b.face)
                         .BindText(4, a.key)
                         .BindText(5, b.key)
                         .Bind(6, distance)
                         .Bind(7, confidence)
                         .Bind(8, now)
                         .Run());
  HW_RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<LeadPage> Catalog::ListLeads(const LeadQuery& query) {
  if (query.page_size < 1 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be 1..", kMaxPageSize, "; got ", query.page_size));
  }
  if (!(query.min_confidence >= 0 && query.min_confidence <= 1)) {
    return absl::InvalidArgumentError("min_confidence must be in 0..1");
  }
  if (query.status && !ValidDecision(*query.status) && *query.status != LeadStatus::kOpen) {
    return absl::InvalidArgumentError(
        "status must be kOpen, kConfirmedForDna, kRejected or kNeedsBetterPhoto");
  }
  // Keyset paging: "<confidence>:<id>" of the last lead returned.
  double after_conf = 0;
  int64_t after_id = 0;
  if (!query.page_token.empty()) {
    const size_t colon = query.page_token.find(':');
    if (colon == std::string::npos ||
        !absl::SimpleAtod(query.page_token.substr(0, colon), &after_conf) ||
        !absl::SimpleAtoi(query.page_token.substr(colon + 1), &after_id) || after_id < 0) {
      return absl::InvalidArgumentError("page_token is not one this catalog returned");
    }
  }
  HW_RETURN_IF_ERROR(CheckDate("event_from", query.event_from));
  HW_RETURN_IF_ERROR(CheckDate("event_to", query.event_to));
  HW_RETURN_IF_ERROR(CheckText("place_contains", query.place_contains, kMaxPlaceBytes));

  // Fixed fragments only; every value is a bound parameter.
  std::string sql = absl::StrCat("SELECT ", kLeadColumns,
                                 " FROM leads l JOIN cases ca ON ca.id = l.case_a "
                                 "JOIN cases cb ON cb.id = l.case_b WHERE l.confidence >= ?1");
  if (query.status) absl::StrAppend(&sql, " AND l.status = ?2");
  if (!query.place_contains.empty()) {
    absl::StrAppend(&sql,
                    " AND (instr(lower(coalesce(ca.place, '')), lower(?3)) > 0 OR "
                    "instr(lower(coalesce(cb.place, '')), lower(?3)) > 0)");
  }
  if (!query.event_from.empty() || !query.event_to.empty()) {
    auto within = [&](const char* c) {
      std::string w = absl::StrCat("(", c, ".event_date IS NOT NULL");
      if (!query.event_from.empty()) absl::StrAppend(&w, " AND ", c, ".event_date >= ?4");
      if (!query.event_to.empty()) absl::StrAppend(&w, " AND ", c, ".event_date <= ?5");
      return w + ")";
    };
    absl::StrAppend(&sql, " AND (", within("ca"), " OR ", within("cb"), ")");
  }
  if (!query.page_token.empty()) {
    absl::StrAppend(&sql, " AND (l.confidence < ?6 OR (l.confidence = ?6 AND l.id > ?7))");
  }
  absl::StrAppend(&sql, " ORDER BY l.confidence DESC, l.id LIMIT ?8");

  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(r.db(), sql));
  q.Bind(1, query.min_confidence);
  if (query.status) q.Bind(2, static_cast<int>(*query.status));
  if (!query.place_contains.empty()) q.BindText(3, query.place_contains);
  if (!query.event_from.empty()) q.BindText(4, query.event_from);
  if (!query.event_to.empty()) q.BindText(5, query.event_to);
  if (!query.page_token.empty()) q.Bind(6, after_conf).Bind(7, after_id);
  q.Bind(8, query.page_size + 1);
  LeadPage page;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    if (static_cast<int>(page.leads.size()) == query.page_size) {
      const Lead& last = page.leads.back();
      page.next_page_token = absl::StrCat(absl::StrFormat("%.17g", last.confidence), ":", last.id);
      break;
    }
    page.leads.push_back(ReadLead(q));
  }
  return page;
}

absl::StatusOr<Lead> Catalog::GetLead(int64_t id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  return LoadLead(r.db(), id);
}

absl::StatusOr<Lead> Catalog::ReviewLead(int64_t id, LeadStatus decision, const std::string& note,
                                         const std::string& reviewer, const std::string& role) {
  if (!ValidDecision(decision)) {
    return absl::InvalidArgumentError(
        "a review's decision must be kConfirmedForDna, kRejected or kNeedsBetterPhoto");
  }
  if (reviewer.empty()) return absl::InvalidArgumentError("a review needs a reviewer");
  HW_RETURN_IF_ERROR(CheckText("reviewer", reviewer, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("role", role, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("note", note, kMaxTextBytes));
  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  const int64_t now = NowMs();
  {
    HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, "UPDATE leads SET status = ?, "
                                                            "updated_ms = ? WHERE id = ?"));
    HW_RETURN_IF_ERROR(q.Bind(1, static_cast<int>(decision)).Bind(2, now).Bind(3, id).Run());
    if (sqlite3_changes(db) == 0) {
      return absl::NotFoundError(absl::StrCat("lead ", id, " does not exist"));
    }
  }
  {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "INSERT INTO lead_reviews (lead_id, decision, note, reviewer, time_ms) "
                           "VALUES (?, ?, ?, ?, ?)"));
    HW_RETURN_IF_ERROR(q.Bind(1, id)
                           .Bind(2, static_cast<int>(decision))
                           .BindTextOrNull(3, note)
                           .BindText(4, reviewer)
                           .Bind(5, now)
                           .Run());
  }
  {
    // The note stays in lead_reviews (deleted with the case); the audit keeps the decision.
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "INSERT INTO audit (time_ms, actor, role, action, target_type, "
                           "target_id, detail) VALUES (?, ?, ?, 'ReviewLead', 'lead', ?, ?)"));
    HW_RETURN_IF_ERROR(q.Bind(1, now)
                           .BindText(2, reviewer)
                           .BindTextOrNull(3, role)
                           .Bind(4, id)
                           .BindText(5, absl::StrCat("decision=", DecisionName(decision)))
                           .Run());
  }
  HW_ASSIGN_OR_RETURN(Lead lead, LoadLead(db, id));
  HW_RETURN_IF_ERROR(txn.Commit());
  return lead;
}

absl::StatusOr<int64_t> Catalog::ClusterSightingFace(
    int64_t face_id, const std::vector<int64_t>& neighbour_face_ids) {
  absl::MutexLock l(&impl_->write_mu_);
  sqlite3* db = impl_->writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  HW_ASSIGN_OR_RETURN(Statement exists, Statement::Prepare(db, "SELECT 1 FROM faces WHERE id = ?"));
  HW_ASSIGN_OR_RETURN(
      Statement cluster_of,
      Statement::Prepare(db, "SELECT cluster_id FROM sighting_clusters WHERE face_id = ?"));
  std::vector<int64_t> members = {face_id};
  std::set<int64_t> clusters;
  {
    HW_ASSIGN_OR_RETURN(bool row, exists.Bind(1, face_id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("face ", face_id, " does not exist"));
  }
  for (int64_t n : neighbour_face_ids) {
    if (n == face_id) continue;
    exists.Reset();
    HW_ASSIGN_OR_RETURN(bool row, exists.Bind(1, n).Step());
    if (row) members.push_back(n);  // deleted meanwhile: skipped
  }
  for (int64_t m : members) {
    cluster_of.Reset();
    HW_ASSIGN_OR_RETURN(bool row, cluster_of.Bind(1, m).Step());
    if (row) clusters.insert(cluster_of.Int(0));
  }
  int64_t target = 0;
  if (!clusters.empty()) {
    target = *clusters.begin();
  } else {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db, "SELECT coalesce(max(cluster_id), 0) + 1 FROM sighting_clusters"));
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    target = row ? q.Int(0) : 1;
  }
  HW_ASSIGN_OR_RETURN(
      Statement merge,
      Statement::Prepare(db, "UPDATE sighting_clusters SET cluster_id = ? WHERE cluster_id = ?"));
  for (int64_t c : clusters) {
    if (c == target) continue;
    merge.Reset();
    HW_RETURN_IF_ERROR(merge.Bind(1, target).Bind(2, c).Run());
  }
  HW_ASSIGN_OR_RETURN(
      Statement put,
      Statement::Prepare(db, "INSERT OR REPLACE INTO sighting_clusters (face_id, cluster_id) "
                             "VALUES (?, ?)"));
  for (int64_t m : members) {
    put.Reset();
    HW_RETURN_IF_ERROR(put.Bind(1, m).Bind(2, target).Run());
  }
  HW_RETURN_IF_ERROR(txn.Commit());
  return target;
}

absl::StatusOr<std::vector<int64_t>> Catalog::SightingClusterCases(int64_t face_id) {
  HW_ASSIGN_OR_RETURN(Impl::Reader r, impl_->AcquireReader());
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(r.db(),
                         "SELECT DISTINCT p.case_id FROM sighting_clusters s JOIN faces f ON "
                         "f.id = s.face_id JOIN photos p ON p.id = f.photo_id WHERE s.cluster_id "
                         "= (SELECT cluster_id FROM sighting_clusters WHERE face_id = ?) "
                         "ORDER BY p.case_id"));
  q.Bind(1, face_id);
  std::vector<int64_t> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(q.Int(0));
  }
  return out;
}

}  // namespace homeward::store
