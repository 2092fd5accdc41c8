// Access control for the Homeward service: API keys, roles and the caller of a request.
//
// Keys live in a JSON-lines file (docs/API.md), one key a line:
//   {"key_id": "alice", "role": "volunteer", "key_sha256": "<64 lowercase hex>"}
// and revocations, appended by RevokeKey (or "revoked": true on a key's own line):
//   {"revoke": "alice", "time": "2026-11-29T17:00:00Z"}
// Only the SHA-256 of a key is stored; a key itself is never written or logged. Blank lines
// and lines starting with '#' are ignored.
//
// A running KeyStore follows its file: every Authenticate stats it (one stat(2)) and re-reads
// it when its inode, size or mtime changed, or after RequestReloadAll() (SIGHUP). A file that
// no longer parses is logged and the keys loaded before stay in force.
//
// THREAD SAFETY: Authenticate, Reload and size may be called from any number of threads;
// RequestReloadAll is async-signal-safe. OWNERSHIP: results are returned by value.
#ifndef HOMEWARD_SERVER_AUTH_H_
#define HOMEWARD_SERVER_AUTH_H_

#include <map>
#include <memory>
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
  // unknown role, a bad digest, a repeated key_id or digest, or a revocation of an unknown
  // key_id; NOT_FOUND when the file is missing.
  static absl::StatusOr<KeyStore> Load(const std::string& path);
  KeyStore(KeyStore&&) noexcept;
  KeyStore& operator=(KeyStore&&) noexcept;
  ~KeyStore();

  // The caller owning `bearer_token` (the key after "Bearer "), after re-reading the file if
  // it changed. UNAUTHENTICATED when missing or unknown, and "API key '<key_id>' was revoked"
  // for a revoked key (the key itself is never echoed).
  absl::StatusOr<Caller> Authenticate(absl::string_view bearer_token) const;
  // Re-reads the file now if it changed since the last read (or always, when `force`). On
  // an error the previous keys stay in force and the error is returned.
  absl::Status Reload(bool force = false) const;
  size_t size() const;     // keys in force (revoked ones excluded)
  size_t revoked() const;  // revoked keys

  // Makes every KeyStore re-read its file at its next Authenticate (SIGHUP).
  static void RequestReloadAll();

 private:
  struct State;
  KeyStore();
  std::unique_ptr<State> state_;
};

// Creates a fresh random key ("hwk_" + 64 hex digits from 32 random bytes), appends its hash
// under `key_id` and `role` to the key file (created with mode 0600 if missing) and returns
// the key, which exists nowhere else. INVALID_ARGUMENT for a bad key id (1..64 characters of
// [A-Za-z0-9._-]) or one already in the file; INTERNAL for I/O or RNG failures.
absl::StatusOr<std::string> AddKey(const std::string& path, const std::string& key_id, Role role);

// Appends a revocation of `key_id` to the key file (a running server notices within one call,
// or at SIGHUP). Returns true if revoked now, false if it was already revoked. NOT_FOUND when
// the file or the key id is missing; INVALID_ARGUMENT for a malformed file; INTERNAL for I/O.
absl::StatusOr<bool> RevokeKey(const std::string& path, const std::string& key_id);

}  // namespace homeward::server

#endif  // HOMEWARD_SERVER_AUTH_H_
