// Catalog::AddPhotoBatch: many photos in one transaction, same rows as AddPhoto.
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/catalog.h"
#include "tests/catalog_backends.h"

namespace homeward::store {
namespace {

namespace fs = std::filesystem;
using ::testing::SizeIs;

Face SeededFace(std::mt19937* rng) {
  std::normal_distribution<float> n(0, 1);
  Face f;
  f.box_w = f.box_h = 80;
  f.descriptor.resize(kDescriptorDim);
  for (float& v : f.descriptor) v = n(*rng);
  f.model_id = "test";
  return f;
}

Catalog::PhotoToAdd PhotoFor(int64_t case_id, const std::string& bytes, int faces,
                             std::mt19937* rng) {
  Catalog::PhotoToAdd p;
  p.meta.case_id = case_id;
  p.meta.date_taken = "2015-06-01";
  p.bytes = bytes;
  for (int i = 0; i < faces; ++i) p.faces.push_back(SeededFace(rng));
  return p;
}

class CatalogBatchTest : public testing::CatalogBackendTest {
 protected:
  void SetUp() override {
    CatalogBackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    OpenCatalog();
    ASSERT_NE(catalog_, nullptr);
    Case missing;
    missing.kind = CaseKind::kMissing;
    missing.display_name = "A";
    auto m = catalog_->AddCase(missing);
    ASSERT_TRUE(m.ok()) << m.status();
    missing_ = *m;
    Case sighting;
    sighting.kind = CaseKind::kSighting;
    sighting.display_name = "B";
    auto s = catalog_->AddCase(sighting);
    ASSERT_TRUE(s.ok()) << s.status();
    sighting_ = *s;
  }
  int64_t missing_ = 0, sighting_ = 0;
  std::mt19937 rng_{7};
};
INSTANTIATE_TEST_SUITE_P(Backends, CatalogBatchTest, testing::AllBackends(), testing::BackendName);

TEST_P(CatalogBatchTest, StoresEveryPhotoFaceAndChangeInOrder) {
  std::vector<Catalog::PhotoToAdd> batch = {PhotoFor(missing_, "photo-1", 1, &rng_),
                                            PhotoFor(sighting_, "photo-2", 3, &rng_),
                                            PhotoFor(missing_, "photo-3", 0, &rng_)};
  auto before = catalog_->LastChangeSeq();
  ASSERT_TRUE(before.ok());
  auto added = catalog_->AddPhotoBatch(batch);
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_THAT(*added, SizeIs(3));
  EXPECT_THAT((*added)[0].face_ids, SizeIs(1));
  EXPECT_THAT((*added)[1].face_ids, SizeIs(3));
  EXPECT_THAT((*added)[2].face_ids, SizeIs(0));
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_FALSE((*added)[i].duplicate);
    auto got = catalog_->GetPhoto((*added)[i].photo_id);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->bytes, batch[i].bytes);
    EXPECT_EQ(got->photo.case_id, batch[i].meta.case_id);
    auto faces = catalog_->ListFaces((*added)[i].photo_id);
    ASSERT_TRUE(faces.ok());
    ASSERT_THAT(*faces, SizeIs(batch[i].faces.size()));
    for (size_t j = 0; j < faces->size(); ++j) {
      EXPECT_EQ((*faces)[j].id, (*added)[i].face_ids[j]);
      EXPECT_EQ((*faces)[j].descriptor, batch[i].faces[j].descriptor);
    }
  }
  auto changes = catalog_->ChangesAfter(*before, 100);
  ASSERT_TRUE(changes.ok());
  ASSERT_THAT(*changes, SizeIs(4));
  EXPECT_EQ((*changes)[0].kind, CaseKind::kMissing);
  EXPECT_EQ((*changes)[1].kind, CaseKind::kSighting);
  EXPECT_EQ((*changes)[1].face_id, (*added)[1].face_ids[0]);
  EXPECT_EQ(static_cast<int64_t>(StoredPhotos().size()), 3);
}

TEST_P(CatalogBatchTest, RepeatedBytesInOneCaseAreDuplicates) {
  auto first = catalog_->AddPhoto(PhotoFor(missing_, "old", 1, &rng_).meta, "old",
                                  {SeededFace(&rng_)});
  ASSERT_TRUE(first.ok()) << first.status();
  auto added = catalog_->AddPhotoBatch({PhotoFor(missing_, "old", 1, &rng_),
                                        PhotoFor(missing_, "new", 1, &rng_),
                                        PhotoFor(missing_, "new", 1, &rng_),
                                        PhotoFor(sighting_, "new", 1, &rng_)});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE((*added)[0].duplicate);
  EXPECT_EQ((*added)[0].photo_id, first->photo_id);
  EXPECT_EQ((*added)[0].face_ids, first->face_ids);
  EXPECT_FALSE((*added)[1].duplicate);
  EXPECT_TRUE((*added)[2].duplicate);
  EXPECT_EQ((*added)[2].photo_id, (*added)[1].photo_id);
  EXPECT_EQ((*added)[2].face_ids, (*added)[1].face_ids);
  EXPECT_FALSE((*added)[3].duplicate);  // another case: its own row, the same file
  auto counts = catalog_->CountByKind();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[CaseKind::kMissing].photos, 2);
  EXPECT_EQ((*counts)[CaseKind::kSighting].photos, 1);
  EXPECT_EQ(static_cast<int64_t>(StoredPhotos().size()), 2);
}

TEST_P(CatalogBatchTest, BadEntryStoresNothing) {
  auto bad_face = PhotoFor(missing_, "x2", 1, &rng_);
  bad_face.faces[0].descriptor.resize(3);
  auto rejected = catalog_->AddPhotoBatch({PhotoFor(missing_, "x1", 1, &rng_), bad_face});
  EXPECT_EQ(rejected.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rejected.status().message()), ::testing::HasSubstr("photos[1]"));

  auto unknown_case = catalog_->AddPhotoBatch(
      {PhotoFor(missing_, "y1", 1, &rng_), PhotoFor(missing_ + 1000, "y2", 1, &rng_)});
  EXPECT_EQ(unknown_case.status().code(), absl::StatusCode::kNotFound);

  auto seq = catalog_->LastChangeSeq();
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 0);
  auto counts = catalog_->CountByKind();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[CaseKind::kMissing].photos, 0);
  EXPECT_EQ(static_cast<int64_t>(StoredPhotos().size()), 0);
}

TEST_P(CatalogBatchTest, EmptyBatchIsOk) {
  auto added = catalog_->AddPhotoBatch({});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(added->empty());
}

}  // namespace
}  // namespace homeward::store
