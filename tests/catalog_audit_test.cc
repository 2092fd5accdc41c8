// The audit row of a change is written in the change's own transaction (store/catalog.h,
// AUDIT): a change is never stored without its row, nor a row without its change. These
// tests check it three ways: the facts the catalog adds to the row, a row that cannot be
// written undoing the change, and a process killed (SIGKILL) while it writes changes.

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/catalog.h"

namespace homeward::store {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::SizeIs;

Face FaceWith(std::mt19937* rng) {
  Face f;
  f.box_x = 10;
  f.box_y = 20;
  f.box_w = 80;
  f.box_h = 90;
  f.width_px = 80;
  f.sharpness = 0.7f;
  f.detector_score = 0.99f;
  std::normal_distribution<float> n(0, 1);
  f.descriptor.resize(kDescriptorDim);
  for (float& v : f.descriptor) v = n(*rng);
  f.model_id = "faceapi-resnet-1";
  return f;
}

Case Child(const std::string& name) {
  Case c;
  c.kind = CaseKind::kMissing;
  c.display_name = name;
  c.date_of_birth = "2012-02-01";
  c.owner_key_id = "key-family-1";
  return c;
}

Photo PhotoOf(int64_t case_id) {
  Photo p;
  p.case_id = case_id;
  p.source = "family";
  p.width = 640;
  p.height = 480;
  return p;
}

AuditEntry Entry(const std::string& action, const std::string& target_type, int64_t id = 0) {
  AuditEntry e;
  e.actor = "key-family-1";
  e.role = "family";
  e.action = action;
  e.target_type = target_type;
  e.target_id = id;
  e.detail = "code=OK";
  return e;
}

int RawExec(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(db_path.c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

size_t FilesUnder(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

class CatalogAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "catalog_audit_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    catalog_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Reopen() {
    catalog_.reset();
    auto c = Catalog::Open(dir_);
    ASSERT_TRUE(c.ok()) << c.status();
    catalog_ = *std::move(c);
  }
  std::vector<AuditEntry> Audit() {
    std::vector<AuditEntry> all;
    for (;;) {
      auto rows = catalog_->ListAudit(all.empty() ? 0 : all.back().id, 10000);
      EXPECT_TRUE(rows.ok()) << rows.status();
      if (!rows.ok() || rows->empty()) return all;
      all.insert(all.end(), rows->begin(), rows->end());
    }
  }

  std::string dir_;
  std::unique_ptr<Catalog> catalog_;
  std::mt19937 rng_{7};
};

TEST_F(CatalogAuditTest, EachChangeWritesItsRowWithItsFacts) {
  const AuditEntry create = Entry("CreateCase", "case");
  auto id = catalog_->AddCase(Child("Amina"), &create);
  ASSERT_TRUE(id.ok()) << id.status();

  Case updated = *catalog_->GetCase(*id);
  updated.place = "Kano";
  const AuditEntry update = Entry("UpdateCase", "case", *id);
  ASSERT_TRUE(catalog_->UpdateCase(updated, &update).ok());

  const AuditEntry add = Entry("AddPhoto", "case", *id);
  auto photo = catalog_->AddPhoto(PhotoOf(*id), "photo bytes", {FaceWith(&rng_), FaceWith(&rng_)},
                                  &add);
  ASSERT_TRUE(photo.ok()) << photo.status();
  // The same bytes again: nothing is added, and the call is still recorded, as a duplicate.
  auto again = catalog_->AddPhoto(PhotoOf(*id), "photo bytes", {FaceWith(&rng_)}, &add);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);

  const AuditEntry del = Entry("DeleteCase", "case", *id);
  ASSERT_TRUE(catalog_->DeleteCase(*id, &del).ok());

  const std::vector<AuditEntry> rows = Audit();
  ASSERT_THAT(rows, SizeIs(5));
  EXPECT_EQ(rows[0].action, "CreateCase");
  EXPECT_EQ(rows[0].target_id, *id) << "the catalog fills in the new case's id";
  EXPECT_EQ(rows[1].action, "UpdateCase");
  EXPECT_EQ(rows[2].action, "AddPhoto");
  EXPECT_THAT(rows[2].detail, HasSubstr(absl::StrCat("photo=", photo->photo_id, " faces=2")));
  EXPECT_THAT(rows[3].detail, HasSubstr("duplicate"));
  EXPECT_EQ(rows[4].action, "DeleteCase");
  EXPECT_THAT(rows[4].detail, HasSubstr("photos=1 faces=2"));
  for (const AuditEntry& e : rows) {
    EXPECT_EQ(e.actor, "key-family-1");
    EXPECT_EQ(e.target_type, "case");
    EXPECT_EQ(e.target_id, *id);
  }
}

TEST_F(CatalogAuditTest, AChangeThatFailsLeavesNoRow) {
  const AuditEntry create = Entry("CreateCase", "case");
  EXPECT_EQ(catalog_->AddCase(Child(" "), &create).status().code(),
            absl::StatusCode::kInvalidArgument);
  const AuditEntry add = Entry("AddPhoto", "case", 424242);
  EXPECT_EQ(catalog_->AddPhoto(PhotoOf(424242), "bytes", {FaceWith(&rng_)}, &add).status().code(),
            absl::StatusCode::kNotFound);
  const AuditEntry del = Entry("DeleteCase", "case", 424242);
  EXPECT_EQ(catalog_->DeleteCase(424242, &del).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Audit().empty());
}

// A row that cannot be written (here a trigger refuses it, as a full disk or a dead
// connection would between the two statements) takes its change with it.
TEST_F(CatalogAuditTest, ARowThatCannotBeWrittenUndoesItsChange) {
  auto kept = catalog_->AddCase(Child("Kept"));
  ASSERT_TRUE(kept.ok());
  ASSERT_TRUE(catalog_->AddPhoto(PhotoOf(*kept), "kept bytes", {FaceWith(&rng_)}).ok());
  const size_t files_before = FilesUnder(fs::path(dir_) / "photos");
  ASSERT_EQ(RawExec(dir_ + "/catalog.db",
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit WHEN NEW.detail LIKE "
                    "'%refuse%' BEGIN SELECT RAISE(ABORT, 'audit refused'); END"),
            SQLITE_OK);

  AuditEntry refused = Entry("CreateCase", "case");
  refused.detail = "refuse";
  EXPECT_FALSE(catalog_->AddCase(Child("Ghost"), &refused).ok());
  auto page = catalog_->ListCases(CaseQuery{});
  ASSERT_TRUE(page.ok());
  ASSERT_THAT(page->cases, SizeIs(1)) << "the case went in without its audit row";

  refused.action = "AddPhoto";
  EXPECT_FALSE(catalog_->AddPhoto(PhotoOf(*kept), "new bytes", {FaceWith(&rng_)}, &refused).ok());
  EXPECT_THAT(*catalog_->ListPhotos(*kept), SizeIs(1));
  EXPECT_EQ(FilesUnder(fs::path(dir_) / "photos"), files_before) << "the new photo's file stayed";

  refused.action = "DeleteCase";
  refused.target_id = *kept;
  EXPECT_FALSE(catalog_->DeleteCase(*kept, &refused).ok());
  EXPECT_TRUE(catalog_->GetCase(*kept).ok()) << "the case was deleted without its audit row";
  EXPECT_THAT(*catalog_->ListPhotos(*kept), SizeIs(1));

  Reopen();  // the deletion journal must not finish a deletion that was rolled back
  EXPECT_TRUE(catalog_->GetCase(*kept).ok());
  EXPECT_THAT(*catalog_->ListPhotos(*kept), SizeIs(1));
  EXPECT_EQ(FilesUnder(fs::path(dir_) / "photos"), files_before);
  EXPECT_TRUE(Audit().empty());
}

// A writer killed with SIGKILL at random points: after reopening, every case and photo has
// its row and every row its change. Before the rows went into the changes' transactions, a
// kill between the commit and the append left a case with no row.
TEST_F(CatalogAuditTest, AKilledWriterLeavesNoChangeWithoutItsRow) {
  catalog_.reset();
  for (int round = 0; round < 6; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto c = Catalog::Open(dir_);
      if (!c.ok()) ::_exit(2);
      std::mt19937 rng(round);
      for (int i = 0;; ++i) {
        const AuditEntry create = Entry("CreateCase", "case");
        auto id = (*c)->AddCase(Child(absl::StrCat("child-", round, "-", i)), &create);
        if (!id.ok()) ::_exit(3);
        const AuditEntry add = Entry("AddPhoto", "case", *id);
        if (!(*c)->AddPhoto(PhotoOf(*id), absl::StrCat("bytes ", round, " ", i), {FaceWith(&rng)},
                            &add)
                 .ok()) {
          ::_exit(4);
        }
        if (i % 3 == 2) {
          const AuditEntry del = Entry("DeleteCase", "case", *id);
          if (!(*c)->DeleteCase(*id, &del).ok()) ::_exit(5);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 70 * round));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself, exit " << WEXITSTATUS(status);
  }
  Reopen();

  std::map<int64_t, std::map<std::string, int>> rows_by_case;
  for (const AuditEntry& e : Audit()) ++rows_by_case[e.target_id][e.action];
  std::vector<Case> cases;
  CaseQuery all;
  all.page_size = 1000;
  do {
    auto page = catalog_->ListCases(all);
    ASSERT_TRUE(page.ok()) << page.status();
    cases.insert(cases.end(), page->cases.begin(), page->cases.end());
    all.page_token = page->next_page_token;
  } while (!all.page_token.empty());
  ASSERT_FALSE(cases.empty());
  for (const Case& c : cases) {
    auto photos = catalog_->ListPhotos(c.id);
    ASSERT_TRUE(photos.ok());
    EXPECT_EQ(rows_by_case[c.id]["CreateCase"], 1) << "case " << c.id;
    EXPECT_EQ(rows_by_case[c.id]["AddPhoto"], static_cast<int>(photos->size())) << "case " << c.id;
    EXPECT_EQ(rows_by_case[c.id]["DeleteCase"], 0) << "case " << c.id;
  }
  int deleted = 0;
  for (const auto& [id, actions] : rows_by_case) {
    if (actions.find("DeleteCase") == actions.end() || actions.at("DeleteCase") == 0) {
      EXPECT_TRUE(catalog_->GetCase(id).ok()) << "a row names case " << id << " that is not there";
      continue;
    }
    ++deleted;
    EXPECT_EQ(catalog_->GetCase(id).status().code(), absl::StatusCode::kNotFound) << id;
  }
  EXPECT_GT(deleted, 0);
}

}  // namespace
}  // namespace homeward::store
