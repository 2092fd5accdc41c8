// Streaming 64-bit checksum for index snapshots (xxHash64-style lanes; detects corruption,
// not tampering). Chunk boundaries do not change the result.
#ifndef HOMEWARD_INDEX_INTERNAL_CHECKSUM_H_
#define HOMEWARD_INDEX_INTERNAL_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace homeward::index::internal {

class Checksum {
 public:
  void Update(const void* data, size_t n) {
    if (n == 0) return;  // Faiss writes empty vectors as (nullptr, 0): memcpy must not see null
    const auto* p = static_cast<const uint8_t*>(data);
    total_ += n;
    if (pending_ > 0) {
      const size_t take = n < kBlock - pending_ ? n : kBlock - pending_;
      std::memcpy(buf_ + pending_, p, take);
      pending_ += take;
      p += take;
      n -= take;
      if (pending_ < kBlock) return;
      Block(buf_);
      pending_ = 0;
    }
    for (; n >= kBlock; p += kBlock, n -= kBlock) Block(p);
    std::memcpy(buf_, p, n);
    pending_ = n;
  }

  uint64_t Finish() const {
    Checksum c = *this;
    std::memset(c.buf_ + c.pending_, 0, kBlock - c.pending_);
    c.Block(c.buf_);
    uint64_t h = total_ * kP5;
    for (uint64_t lane : c.lane_) h = Rotl(h ^ Round(0, lane), 27) * kP1 + kP4;
    h ^= h >> 33;
    h *= kP2;
    h ^= h >> 29;
    h *= kP3;
    return h ^ (h >> 32);
  }

 private:
  static constexpr size_t kBlock = 32;
  static constexpr uint64_t kP1 = 11400714785074694791ULL;
  static constexpr uint64_t kP2 = 14029467366897019727ULL;
  static constexpr uint64_t kP3 = 1609587929392839161ULL;
  static constexpr uint64_t kP4 = 9650029242287828579ULL;
  static constexpr uint64_t kP5 = 2870177450012600261ULL;

  static uint64_t Rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  static uint64_t Round(uint64_t acc, uint64_t w) { return Rotl(acc + w * kP2, 31) * kP1; }
  void Block(const uint8_t* p) {
    for (int i = 0; i < 4; ++i) {
      uint64_t w;
      std::memcpy(&w, p + 8 * i, 8);
      lane_[i] = Round(lane_[i], w);
    }
  }

  uint64_t lane_[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
  uint8_t buf_[kBlock] = {};
  size_t pending_ = 0;
  uint64_t total_ = 0;
};

}  // namespace homeward::index::internal

#endif  // HOMEWARD_INDEX_INTERNAL_CHECKSUM_H_
