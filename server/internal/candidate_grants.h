// CandidateGrants: which MISSING/FOUND faces each volunteer key has been shown as candidates.
//
// The thumbnail policy (docs/API.md, "Roles"): a volunteer sees the face crops of the
// candidates its own Search or SubmitSighting returned, and no other crop of a MISSING or
// FOUND child, so that a volunteer key cannot page through the children's faces by id. The
// service records every candidate face it returns to a volunteer here and GetFaceCrop asks.
//
// Kept in memory for the checks: a grant lasts `ttl` (default 24 h), at most `per_key_limit`
// per key (the oldest go first). The service also writes each grant with its expiry to the
// catalog and restores the unexpired ones at start, so a deploy does not break a volunteer's
// page (Grant's `now` then places the restored expiry).
// Face ids are never reused (store/catalog.h), so the grant of a deleted face opens nothing.
//
// THREAD SAFETY: all methods may be called concurrently.
#ifndef HOMEWARD_SERVER_INTERNAL_CANDIDATE_GRANTS_H_
#define HOMEWARD_SERVER_INTERNAL_CANDIDATE_GRANTS_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace homeward::server::internal {

class CandidateGrants {
 public:
  using Clock = std::chrono::steady_clock;

  explicit CandidateGrants(size_t per_key_limit = 10000,
                           Clock::duration ttl = std::chrono::hours(24))
      : per_key_limit_(per_key_limit), ttl_(ttl) {}

  void Grant(const std::string& key_id, const std::vector<int64_t>& face_ids,
             Clock::time_point now = Clock::now()) {
    if (face_ids.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    PerKey& k = keys_[key_id];
    for (int64_t id : face_ids) {
      k.expiry[id] = now + ttl_;
      k.order.emplace_back(id, now + ttl_);
    }
    // Oldest first out, beyond the limit or past their time (an entry of `order` is stale when
    // the face was granted again later: its expiry in the map is then newer).
    while (!k.order.empty() &&
           (k.expiry.size() > per_key_limit_ || k.order.front().second <= now)) {
      const auto [id, expiry] = k.order.front();
      k.order.pop_front();
      auto it = k.expiry.find(id);
      if (it != k.expiry.end() && it->second == expiry) k.expiry.erase(it);
    }
    // Bounded memory even when one face is granted over and over.
    if (k.order.size() > 4 * per_key_limit_ + 64) {
      std::deque<std::pair<int64_t, Clock::time_point>> live;
      for (const auto& e : k.order) {
        auto it = k.expiry.find(e.first);
        if (it != k.expiry.end() && it->second == e.second) live.push_back(e);
      }
      k.order.swap(live);
    }
  }

  Clock::duration ttl() const { return ttl_; }

  bool Granted(const std::string& key_id, int64_t face_id,
               Clock::time_point now = Clock::now()) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto k = keys_.find(key_id);
    if (k == keys_.end()) return false;
    auto it = k->second.expiry.find(face_id);
    return it != k->second.expiry.end() && now < it->second;
  }

 private:
  struct PerKey {
    std::unordered_map<int64_t, Clock::time_point> expiry;
    std::deque<std::pair<int64_t, Clock::time_point>> order;  // grant order
  };
  const size_t per_key_limit_;
  const Clock::duration ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, PerKey> keys_;
};

}  // namespace homeward::server::internal

#endif  // HOMEWARD_SERVER_INTERNAL_CANDIDATE_GRANTS_H_
