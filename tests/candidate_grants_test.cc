// Tests for server/internal/candidate_grants.h: the volunteer thumbnail policy's memory.
#include "server/internal/candidate_grants.h"

#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace homeward::server::internal {
namespace {

using Clock = CandidateGrants::Clock;
using std::chrono::hours;
using std::chrono::minutes;

TEST(CandidateGrants, OnlyTheKeyThatWasShownAFaceHasIt) {
  CandidateGrants grants;
  const Clock::time_point t0 = Clock::now();
  grants.Grant("vol", {11, 12}, t0);
  EXPECT_TRUE(grants.Granted("vol", 11, t0));
  EXPECT_TRUE(grants.Granted("vol", 12, t0));
  EXPECT_FALSE(grants.Granted("vol", 13, t0));
  EXPECT_FALSE(grants.Granted("vol2", 11, t0));
  EXPECT_FALSE(grants.Granted("", 11, t0));
  grants.Grant("vol2", {}, t0);  // nothing shown, nothing granted
  EXPECT_FALSE(grants.Granted("vol2", 12, t0));
}

TEST(CandidateGrants, GrantsExpireAndARepeatedGrantRenews) {
  CandidateGrants grants(/*per_key_limit=*/100, /*ttl=*/hours(24));
  const Clock::time_point t0 = Clock::now();
  grants.Grant("vol", {1, 2}, t0);
  grants.Grant("vol", {2}, t0 + hours(20));  // shown again later
  EXPECT_TRUE(grants.Granted("vol", 1, t0 + hours(23)));
  EXPECT_FALSE(grants.Granted("vol", 1, t0 + hours(24)));
  EXPECT_TRUE(grants.Granted("vol", 2, t0 + hours(43)));
  // A later grant sweeps expired entries but not the renewed one.
  grants.Grant("vol", {3}, t0 + hours(30));
  EXPECT_FALSE(grants.Granted("vol", 1, t0 + hours(30)));
  EXPECT_TRUE(grants.Granted("vol", 2, t0 + hours(30)));
  EXPECT_TRUE(grants.Granted("vol", 3, t0 + hours(30)));
}

TEST(CandidateGrants, OldestGoFirstBeyondThePerKeyLimit) {
  CandidateGrants grants(/*per_key_limit=*/3, /*ttl=*/hours(24));
  const Clock::time_point t0 = Clock::now();
  grants.Grant("vol", {1, 2, 3}, t0);
  grants.Grant("vol", {1}, t0 + minutes(1));  // 1 renewed: 2 is now the oldest
  grants.Grant("vol", {4}, t0 + minutes(2));
  EXPECT_TRUE(grants.Granted("vol", 1, t0 + minutes(3)));
  EXPECT_FALSE(grants.Granted("vol", 2, t0 + minutes(3)));
  EXPECT_TRUE(grants.Granted("vol", 3, t0 + minutes(3)));
  EXPECT_TRUE(grants.Granted("vol", 4, t0 + minutes(3)));
  // Granting one face over and over keeps it, and memory bounded (no crash, still granted).
  for (int i = 0; i < 2000; ++i) grants.Grant("vol", {4}, t0 + minutes(4));
  EXPECT_TRUE(grants.Granted("vol", 4, t0 + minutes(5)));
}

// Two threads per key grant and check at once (a limit no thread reaches, so every grant must
// be visible to its own thread at once and to all at the end). Run under TSan by
// scripts/asan.sh tsan.
TEST(CandidateGrants, ConcurrentGrantsAndChecks) {
  CandidateGrants grants(/*per_key_limit=*/100000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&grants, t] {
      const std::string key = "vol" + std::to_string(t % 2);
      for (int64_t i = 0; i < 2000; ++i) {
        const int64_t face = 10 * i + t;
        grants.Grant(key, {face});
        EXPECT_TRUE(grants.Granted(key, face));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    const std::string key = "vol" + std::to_string(t % 2);
    for (int64_t i = 0; i < 2000; ++i) ASSERT_TRUE(grants.Granted(key, 10 * i + t)) << t << " " << i;
    EXPECT_FALSE(grants.Granted("vol" + std::to_string(1 - t % 2), t));
  }
}

}  // namespace
}  // namespace homeward::server::internal
