// Access control for the Homeward service: API keys, roles and the caller of a request.
//
// Keys live in a JSON-lines file (docs/API.md), one key a line:
//   {"key_id": "alice", "role": "volunteer", "key_sha256": "<64 lowercase hex>"}
// Only the SHA-256 of a key is stored; a key itself is never written or logged. Blank lines
// and lines starting with '#' are ignored.
//
// THREAD SAFETY: a KeyStore is immutable after Load; Authenticate may be called from any
// number of threads. OWNERSHIP: results are returned by value.
#ifndef HOMEWARD_SERVER_AUTH_H_
#define HOMEWARD_SERVER_AUTH_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/sha256.h"

namespace homeward::server {

enum class Role { kVolunteer = 1, kFamily = 2, kInvestigator = 3, kAdmin = 4 };

absl::string_view RoleName(Role role);
// "volunteer", "family", "investigator", "admin"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Role> ParseRole(absl::string_view name);

// Who is calling: the key id (never the key) and its role.
struct Caller {
  std::string key_id;
  Role role = Role::kVolunteer;
  // Investigators and admins see every case in full.
  bool privileged() const { return role == Role::kInvestigator || role == Role::kAdmin; }
};

using ::homeward::base::Sha256Hex;  // lowercase hex SHA-256, how keys are stored

class KeyStore {
 public:
  // Reads the key file. INVALID_ARGUMENT (with the line number) for a malformed line, an
  // unknown role, a bad digest or a repeated key_id; NOT_FOUND when the file is missing.
  static absl::StatusOr<KeyStore> Load(const std::string& path);

  // The caller owning `bearer_token` (the key after "Bearer "); UNAUTHENTICATED when unknown.
  absl::StatusOr<Caller> Authenticate(absl::string_view bearer_token) const;
  size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, Caller> by_hash_;  // key_sha256 -> caller
};

// Creates a fresh random key ("hwk_" + 64 hex digits from 32 random bytes), appends its hash
// under `key_id` and `role` to the key file (created with mode 0600 if missing) and returns
// the key, which exists nowhere else. INVALID_ARGUMENT for a bad key id (1..64 characters of
// [A-Za-z0-9._-]) or one already in the file; INTERNAL for I/O or RNG failures.
absl::StatusOr<std::string> AddKey(const std::string& path, const std::string& key_id, Role role);

}  // namespace homeward::server

#endif  // HOMEWARD_SERVER_AUTH_H_
