// The catalog's retention of SIGHTING cases (data minimisation, schema version 7), on a real
// SQLite file: which sightings expire and when, that expiry is DeleteCase's real deletion, the
// re-check inside the deleting transaction, the audit row, the counter, and kill -9.
// The catalog stamps rows with the real clock; the tests move "now" forward instead, and
// backdate rows with plain SQL where a scenario needs an old case.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/catalog.h"
#include "store/internal/schema.h"
#include "tests/catalog_backends.h"

namespace homeward::store {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kDayMs = 24LL * 3600 * 1000;
constexpr int64_t kRetentionMs = 90 * kDayMs;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every test runs on both backends (tests/catalog_backends.h).
class CatalogRetentionTest : public homeward::testing::CatalogBackendTest {
 protected:
  void SetUp() override {
    CatalogBackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    Open();
  }
  void Open() { OpenCatalog(); }
  int64_t NewCase(CaseKind kind, const std::string& name = "child") {
    Case c;
    c.kind = kind;
    c.display_name = name;
    auto id = catalog_->AddCase(c);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }
  // One photo with one face, random bytes unless given; returns the face id.
  int64_t NewFace(int64_t case_id, std::string bytes = "") {
    if (bytes.empty()) {
      bytes.resize(300);
      for (char& ch : bytes) ch = static_cast<char>(rng_() & 0xff);
    }
    Photo p;
    p.case_id = case_id;
    Face f;
    f.box_x = 1;
    f.box_y = 2;
    f.box_w = 50;
    f.box_h = 60;
    std::normal_distribution<float> n(0, 1);
    f.descriptor.resize(kDescriptorDim);
    for (float& v : f.descriptor) v = n(rng_);
    auto r = catalog_->AddPhoto(p, bytes, {f});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && !r->face_ids.empty() ? r->face_ids[0] : 0;
  }
  int64_t Lead(int64_t face_x, int64_t face_y) {
    auto r = catalog_->UpsertLead(face_x, face_y, 0.3, 0.8);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->lead_id : 0;
  }
  // Moves a case, its photos and its leads `days` into the past (as if created then).
  void Backdate(int64_t case_id, int days) {
    const int64_t t = NowMs() - days * kDayMs;
    for (const std::string& sql :
         {absl::StrCat("UPDATE cases SET created_ms = ", t, ", updated_ms = ", t,
                       " WHERE id = ", case_id),
          absl::StrCat("UPDATE photos SET created_ms = ", t, " WHERE case_id = ", case_id),
          absl::StrCat("UPDATE leads SET created_ms = ", t, ", updated_ms = ", t,
                       " WHERE case_a = ", case_id, " OR case_b = ", case_id)}) {
      const absl::Status done = RawExec(sql);
      ASSERT_TRUE(done.ok()) << sql << ": " << done;
    }
  }
  std::vector<int64_t> Expired(int64_t now_ms) {
    auto ids = catalog_->ListExpiredSightings(now_ms, kRetentionMs, 1000);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<int64_t>{};
  }
  int64_t Count() {
    auto n = catalog_->ExpiredSightingCount();
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : -1;
  }
  std::mt19937 rng_{11};
};

AuditEntry ExpiryAudit() {
  AuditEntry e;
  e.actor = "retention";
  e.role = "system";
  e.action = "expire";
  e.target_type = "case";
  e.detail = "sighting retention 90 days, no open lead";
  return e;
}

TEST_P(CatalogRetentionTest, UnmatchedSightingExpiresAfterThePeriodAndLeavesNothing) {
  const int64_t sighting = NewCase(CaseKind::kSighting, "Street Child Retention-7731");
  const int64_t face = NewFace(sighting);
  const int64_t missing = NewCase(CaseKind::kMissing);
  NewFace(missing);
  const int64_t now = NowMs();
  EXPECT_THAT(Expired(now), IsEmpty());
  EXPECT_THAT(Expired(now + 89 * kDayMs), IsEmpty());
  // MISSING cases never expire, however old.
  EXPECT_THAT(Expired(now + 91 * kDayMs), ElementsAre(sighting));
  ASSERT_EQ(StoredPhotos().size(), 2u);

  const AuditEntry audit = ExpiryAudit();
  auto removed = catalog_->ExpireSighting(sighting, now + 91 * kDayMs, kRetentionMs, &audit);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(*removed, ElementsAre(face));
  EXPECT_EQ(catalog_->GetCase(sighting).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(catalog_->GetFace(face).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StoredPhotos().size(), 1u);  // only the MISSING case's photo is left
  EXPECT_EQ(Count(), 1);
  auto changes = catalog_->ChangesAfter(0, 1000);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->back().op, ChangeOp::kRemove);
  EXPECT_EQ(changes->back().face_id, face);

  // The audit row: the case id and the reason, nothing about the child.
  auto rows = catalog_->ListAudit(0, 100, "case", sighting);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].action, "expire");
  EXPECT_EQ((*rows)[0].actor, "retention");
  EXPECT_EQ((*rows)[0].detail, "sighting retention 90 days, no open lead photos=1 faces=1");
  EXPECT_EQ((*rows)[0].detail.find("Retention-7731"), std::string::npos);
  EXPECT_THAT(Expired(now + 91 * kDayMs), IsEmpty());
  catalog_.reset();
  if (sqlite()) EXPECT_EQ(RawInt("SELECT count(*) FROM pending_unlink"), 0);
}

TEST_P(CatalogRetentionTest, OpenConfirmedAndNeedsBetterPhotoLeadsProtectASighting) {
  const int64_t missing = NewCase(CaseKind::kMissing);
  const int64_t missing_face = NewFace(missing);
  const int64_t far = NowMs() + 400 * kDayMs;
  for (LeadStatus status :
       {LeadStatus::kOpen, LeadStatus::kConfirmedForDna, LeadStatus::kNeedsBetterPhoto}) {
    const int64_t sighting = NewCase(CaseKind::kSighting);
    const int64_t lead = Lead(NewFace(sighting), missing_face);
    if (status != LeadStatus::kOpen) {
      ASSERT_TRUE(catalog_->ReviewLead(lead, status, "", "inv").ok());
    }
    Backdate(sighting, 300);
    EXPECT_THAT(Expired(far), IsEmpty()) << static_cast<int>(status);
    auto r = catalog_->ExpireSighting(sighting, far, kRetentionMs, nullptr);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
    EXPECT_TRUE(catalog_->GetCase(sighting).ok());
  }
  EXPECT_EQ(Count(), 0);
}

TEST_P(CatalogRetentionTest, RejectedLeadStopsProtectingAndTheClockRunsFromTheRejection) {
  const int64_t missing = NewCase(CaseKind::kMissing);
  const int64_t missing_face = NewFace(missing);
  const int64_t sighting = NewCase(CaseKind::kSighting);
  const int64_t lead = Lead(NewFace(sighting), missing_face);
  Backdate(sighting, 300);  // the sighting and its lead are 300 days old; the lead is open
  const int64_t now = NowMs();
  EXPECT_THAT(Expired(now), IsEmpty());
  ASSERT_TRUE(catalog_->ReviewLead(lead, LeadStatus::kRejected, "not her", "inv").ok());
  // Rejected today: 300 days of age do not count, the period runs from the rejection.
  EXPECT_THAT(Expired(now + 10 * kDayMs), IsEmpty());
  EXPECT_THAT(Expired(now + 89 * kDayMs), IsEmpty());
  EXPECT_THAT(Expired(now + 91 * kDayMs), ElementsAre(sighting));
  ASSERT_TRUE(catalog_->ExpireSighting(sighting, now + 91 * kDayMs, kRetentionMs, nullptr).ok());
  // Its lead, evidence and reviews went with it; the MISSING case stays.
  EXPECT_EQ(catalog_->GetLead(lead).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(catalog_->GetCase(missing).ok());
  EXPECT_EQ(RawInt("SELECT count(*) FROM lead_reviews"), 0);
  EXPECT_EQ(RawInt("SELECT count(*) FROM lead_evidence"), 0);
}

TEST_P(CatalogRetentionTest, ALeadThatGoesWithTheOtherCaseRestartsTheClock) {
  const int64_t missing = NewCase(CaseKind::kMissing);
  const int64_t sighting = NewCase(CaseKind::kSighting);
  Lead(NewFace(sighting), NewFace(missing));
  Backdate(sighting, 300);
  ASSERT_TRUE(catalog_->DeleteCase(missing).ok());  // the open lead goes with it
  const int64_t now = NowMs();
  EXPECT_THAT(Expired(now + 10 * kDayMs), IsEmpty());
  EXPECT_THAT(Expired(now + 91 * kDayMs), ElementsAre(sighting));
}

TEST_P(CatalogRetentionTest, ANewPhotoOrUpdateRestartsTheClock) {
  const int64_t sighting = NewCase(CaseKind::kSighting);
  NewFace(sighting);
  Backdate(sighting, 300);
  const int64_t now = NowMs();
  EXPECT_THAT(Expired(now), ElementsAre(sighting));
  NewFace(sighting);  // a second photo today
  EXPECT_THAT(Expired(now + 10 * kDayMs), IsEmpty());
  EXPECT_THAT(Expired(now + 91 * kDayMs), ElementsAre(sighting));
}

// The sweep lists, then deletes one by one: a lead proposed in between keeps the sighting,
// because ExpireSighting checks again inside its own transaction.
TEST_P(CatalogRetentionTest, ALeadProposedAfterTheListingKeepsTheSighting) {
  const int64_t sighting = NewCase(CaseKind::kSighting);
  const int64_t face = NewFace(sighting);
  const int64_t later = NowMs() + 91 * kDayMs;
  ASSERT_THAT(Expired(later), ElementsAre(sighting));
  const int64_t missing = NewCase(CaseKind::kMissing);
  Lead(face, NewFace(missing));
  auto r = catalog_->ExpireSighting(sighting, later, kRetentionMs, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_TRUE(catalog_->GetCase(sighting).ok());
  EXPECT_TRUE(catalog_->GetFace(face).ok());
  EXPECT_EQ(Count(), 0);
  // Nothing written: no audit row for the refused expiry.
  auto rows = catalog_->ListAudit(0, 100);
  ASSERT_TRUE(rows.ok());
  EXPECT_THAT(*rows, IsEmpty());
}

TEST_P(CatalogRetentionTest, OnlySightingsExpireAndBadArgumentsAreRefused) {
  const int64_t missing = NewCase(CaseKind::kMissing);
  Backdate(missing, 300);
  const int64_t later = NowMs() + 91 * kDayMs;
  EXPECT_EQ(catalog_->ExpireSighting(missing, later, kRetentionMs, nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(catalog_->ExpireSighting(999, later, kRetentionMs, nullptr).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(catalog_->ExpireSighting(missing, later, 0, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->ListExpiredSightings(later, -1, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->ListExpiredSightings(later, kRetentionMs, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(catalog_->GetCase(missing).ok());
}

TEST_P(CatalogRetentionTest, APhotoFileSharedWithAnotherCaseStays) {
  const std::string bytes(500, 'x');
  const int64_t missing = NewCase(CaseKind::kMissing);
  NewFace(missing, bytes);
  const int64_t sighting = NewCase(CaseKind::kSighting);
  NewFace(sighting, bytes);
  const int64_t later = NowMs() + 91 * kDayMs;
  ASSERT_TRUE(catalog_->ExpireSighting(sighting, later, kRetentionMs, nullptr).ok());
  auto photos = catalog_->ListPhotos(missing);
  ASSERT_TRUE(photos.ok());
  ASSERT_EQ(photos->size(), 1u);
  auto got = catalog_->GetPhoto((*photos)[0].id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->bytes, bytes);
}

TEST_P(CatalogRetentionTest, TheCounterSurvivesAReopen) {
  const int64_t later = NowMs() + 91 * kDayMs;
  for (int i = 0; i < 3; ++i) {
    const int64_t s = NewCase(CaseKind::kSighting);
    NewFace(s);
    ASSERT_TRUE(catalog_->ExpireSighting(s, later, kRetentionMs, nullptr).ok());
  }
  EXPECT_EQ(Count(), 3);
  Open();
  EXPECT_EQ(Count(), 3);
  if (sqlite()) {
    EXPECT_EQ(RawInt("SELECT version FROM schema_version"), internal::kSchemaVersion);
  }
}

TEST_P(CatalogRetentionTest, LeadsOfCaseReturnsBothSidesWithReviews) {
  const int64_t sighting = NewCase(CaseKind::kSighting);
  const int64_t sface = NewFace(sighting);
  const int64_t m1 = NewCase(CaseKind::kMissing);
  const int64_t m2 = NewCase(CaseKind::kMissing);
  const int64_t other = NewCase(CaseKind::kFound);
  const int64_t l1 = Lead(sface, NewFace(m1));
  const int64_t l2 = Lead(sface, NewFace(m2));
  Lead(NewFace(other), NewFace(m2));  // not the sighting's
  ASSERT_TRUE(catalog_->ReviewLead(l1, LeadStatus::kRejected, "no", "inv").ok());
  auto leads = catalog_->LeadsOfCase(sighting);
  ASSERT_TRUE(leads.ok()) << leads.status();
  ASSERT_EQ(leads->size(), 2u);
  EXPECT_EQ((*leads)[0].id, l1);
  EXPECT_EQ((*leads)[1].id, l2);
  ASSERT_EQ((*leads)[0].reviews.size(), 1u);
  EXPECT_EQ((*leads)[0].reviews[0].note, "no");
  EXPECT_EQ((*leads)[1].evidence.size(), 1u);
  auto none = catalog_->LeadsOfCase(12345);
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(*none, IsEmpty());
}

// A child expires sightings one by one, reporting each acknowledged expiry; the parent kills
// it mid-sweep. After reopening (which replays the deletion journal) every sighting is either
// wholly there (row, photo, face, file) or wholly gone, and the files on disk are exactly
// those the remaining rows name.
TEST_P(CatalogRetentionTest, Kill9DuringExpiryLeavesNoHalfDeletedSighting) {
  std::vector<int64_t> sightings;
  for (int i = 0; i < 300; ++i) {
    const int64_t s = NewCase(CaseKind::kSighting);
    NewFace(s);
    sightings.push_back(s);
  }
  catalog_.reset();
  const int64_t later = NowMs() + 91 * kDayMs;

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto c = Catalog::Open(location().location());
    if (!c.ok()) ::_exit(2);
    auto ids = (*c)->ListExpiredSightings(later, kRetentionMs, 10000);
    if (!ids.ok()) ::_exit(3);
    const AuditEntry audit = ExpiryAudit();
    for (int64_t id : *ids) {
      if (!(*c)->ExpireSighting(id, later, kRetentionMs, &audit).ok()) ::_exit(4);
      if (::write(fds[1], &id, sizeof(id)) != sizeof(id)) ::_exit(5);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::set<int64_t> expired;
  int64_t id;
  while (expired.size() < 20 && ::read(fds[0], &id, sizeof(id)) == sizeof(id)) expired.insert(id);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  while (::read(fds[0], &id, sizeof(id)) == sizeof(id)) expired.insert(id);
  ::close(fds[0]);
  ASSERT_GE(expired.size(), 20u);
  ASSERT_LT(expired.size(), sightings.size()) << "the child finished before the kill";

  Open();
  std::set<std::string> named;
  int64_t remaining = 0;
  for (int64_t s : sightings) {
    auto c = catalog_->GetCase(s);
    auto photos = catalog_->ListPhotos(s);
    if (!c.ok()) {
      EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
      EXPECT_TRUE(!photos.ok() || photos->empty())
          << "case " << s << " lost its row but kept photos";
      continue;
    }
    ASSERT_TRUE(photos.ok()) << photos.status();
    EXPECT_EQ(expired.count(s), 0u) << "acknowledged expiry of " << s << " came back";
    ++remaining;
    ASSERT_EQ(photos->size(), 1u) << "case " << s << " is half deleted";
    auto faces = catalog_->ListFaces((*photos)[0].id);
    ASSERT_TRUE(faces.ok());
    EXPECT_EQ(faces->size(), 1u);
    auto got = catalog_->GetPhoto((*photos)[0].id);
    EXPECT_TRUE(got.ok()) << got.status();
    named.insert((*photos)[0].file_name);
  }
  EXPECT_EQ(StoredPhotos(), named);
  const int64_t gone = static_cast<int64_t>(sightings.size()) - remaining;
  EXPECT_GE(gone, static_cast<int64_t>(expired.size()));
  EXPECT_LE(gone, static_cast<int64_t>(expired.size()) + 1);  // one committed, unacknowledged
  EXPECT_EQ(Count(), gone);
  auto rows = catalog_->ListAudit(0, 10000, "", 0);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(static_cast<int64_t>(rows->size()), gone);  // one audit row per expiry, no more
  catalog_.reset();
  if (sqlite()) EXPECT_EQ(RawInt("SELECT count(*) FROM pending_unlink"), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, CatalogRetentionTest, homeward::testing::AllBackends(),
                         homeward::testing::BackendName);

}  // namespace
}  // namespace homeward::store
