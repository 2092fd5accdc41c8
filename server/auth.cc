#include "server/auth.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/sha256.h"
#include "base/status_macros.h"

namespace homeward::server {
namespace {

using ::homeward::base::HexEncode;
using ::homeward::base::IsSha256Hex;

bool IsValidKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

// Appends one line durably (one write(2) on an O_APPEND descriptor: concurrent appenders do
// not interleave), creating the file with mode 0600.
absl::Status AppendLine(const std::string& path, const std::string& line) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  bool ok =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kVolunteer:
      return "volunteer";
    case Role::kFamily:
      return "family";
    case Role::kInvestigator:
      return "investigator";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role r : {Role::kVolunteer, Role::kFamily, Role::kInvestigator, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role \"", name, "\": use volunteer, family, investigator or admin"));
}

// ---- Key file parsing --------------------------------------------------------------------

namespace {

struct KeyTable {
  struct Entry {
    Caller caller;
    bool revoked = false;
  };
  std::map<std::string, Entry> by_hash;  // key_sha256 -> entry
  std::map<std::string, std::string> hash_by_id;
  size_t revoked = 0;
};

// What identifies one version of the key file without reading it.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;  // 0: missing
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
};

FileStamp StampOf(const std::string& path) {
  FileStamp s;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

std::atomic<uint64_t> g_reload_generation{0};

// Parses the whole file; see KeyStore::Load for the errors.
absl::StatusOr<std::shared_ptr<KeyTable>> ParseKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read the API key file ", path,
        ": create it with `homeward-server --add-key ROLE --key-id NAME --api-keys ", path, "`"));
  }
  auto table = std::make_shared<KeyTable>();
  std::vector<std::pair<int, std::string>> revocations;  // (line, key_id)
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    auto where = [&] { return absl::StrCat(path, ":", line_no, ": "); };
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("revoke")) {
      if (!j["revoke"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(), "expected {\"revoke\": \"<key_id>\", \"time\": ...}"));
      }
      revocations.emplace_back(line_no, j["revoke"].get<std::string>());
      continue;
    }
    if (!j.is_object() || !j.contains("key_id") || !j.contains("role") ||
        !j.contains("key_sha256") || !j["key_id"].is_string() || !j["role"].is_string() ||
        !j["key_sha256"].is_string() || (j.contains("revoked") && !j["revoked"].is_boolean())) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected {\"key_id\": ..., \"role\": ..., \"key_sha256\": ...}"));
    }
    KeyTable::Entry entry;
    Caller& caller = entry.caller;
    caller.key_id = j["key_id"].get<std::string>();
    if (!IsValidKeyId(caller.key_id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "key_id must be 1..64 characters of [A-Za-z0-9._-]"));
    }
    auto role = ParseRole(j["role"].get<std::string>());
    if (!role.ok())
      return absl::InvalidArgumentError(absl::StrCat(where(), role.status().message()));
    caller.role = *role;
    std::string hash = j["key_sha256"].get<std::string>();
    if (!IsSha256Hex(hash)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "key_sha256 must be 64 lowercase hex digits"));
    }
    if (table->hash_by_id.count(caller.key_id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "key_id \"", caller.key_id, "\" appears twice"));
    }
    if (table->by_hash.count(hash)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "key_sha256 repeats the one of key_id \"",
                       table->by_hash[hash].caller.key_id, "\""));
    }
    entry.revoked = j.value("revoked", false);
    table->hash_by_id[caller.key_id] = hash;
    table->by_hash[hash] = std::move(entry);
  }
  for (const auto& [line_no, key_id] : revocations) {
    auto it = table->hash_by_id.find(key_id);
    if (it == table->hash_by_id.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": revokes key_id \"", key_id, "\", which no line has"));
    }
    table->by_hash[it->second].revoked = true;
  }
  for (const auto& [hash, entry] : table->by_hash) table->revoked += entry.revoked ? 1 : 0;
  return table;
}

}  // namespace

struct KeyStore::State {
  std::string path;
  absl::Mutex mu;
  std::shared_ptr<const KeyTable> table ABSL_GUARDED_BY(mu);
  FileStamp stamp ABSL_GUARDED_BY(mu);
  uint64_t generation ABSL_GUARDED_BY(mu) = 0;
};

KeyStore::KeyStore() : state_(std::make_unique<State>()) {}
KeyStore::KeyStore(KeyStore&&) noexcept = default;
KeyStore& KeyStore::operator=(KeyStore&&) noexcept = default;
KeyStore::~KeyStore() = default;

absl::StatusOr<KeyStore> KeyStore::Load(const std::string& path) {
  KeyStore store;
  store.state_->path = path;
  // Stamp first: a change made while the file is read shows at the next check.
  FileStamp stamp = StampOf(path);
  uint64_t generation = g_reload_generation.load();
  HW_ASSIGN_OR_RETURN(std::shared_ptr<KeyTable> table, ParseKeyFile(path));
  absl::MutexLock lock(&store.state_->mu);
  store.state_->table = std::move(table);
  store.state_->stamp = stamp;
  store.state_->generation = generation;
  return store;
}

void KeyStore::RequestReloadAll() { g_reload_generation.fetch_add(1); }

absl::Status KeyStore::Reload(bool force) const {
  State& st = *state_;
  FileStamp stamp = StampOf(st.path);
  uint64_t generation = g_reload_generation.load();
  {
    absl::ReaderMutexLock lock(&st.mu);
    if (!force && st.stamp == stamp && st.generation == generation) return absl::OkStatus();
  }
  absl::MutexLock lock(&st.mu);
  if (!force && st.stamp == stamp && st.generation == generation) return absl::OkStatus();
  st.stamp = stamp;  // an unreadable version is reported once, not at every call
  st.generation = generation;
  absl::StatusOr<std::shared_ptr<KeyTable>> table = ParseKeyFile(st.path);
  if (!table.ok()) {
    spdlog::error("cannot reload the API keys: {}; the keys loaded before stay in force",
                  std::string(table.status().message()));
    return table.status();
  }
  st.table = std::move(*table);
  spdlog::info("reloaded the API keys from {}: {} in force, {} revoked", st.path,
               st.table->by_hash.size() - st.table->revoked, st.table->revoked);
  return absl::OkStatus();
}

size_t KeyStore::size() const {
  absl::ReaderMutexLock lock(&state_->mu);
  return state_->table->by_hash.size() - state_->table->revoked;
}

size_t KeyStore::revoked() const {
  absl::ReaderMutexLock lock(&state_->mu);
  return state_->table->revoked;
}

absl::StatusOr<Caller> KeyStore::Authenticate(absl::string_view bearer_token) const {
  if (bearer_token.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send the metadata `authorization: Bearer <key>`");
  }
  Reload().IgnoreError();  // logged; the previous keys stay in force
  std::shared_ptr<const KeyTable> table;
  {
    absl::ReaderMutexLock lock(&state_->mu);
    table = state_->table;
  }
  auto it = table->by_hash.find(Sha256Hex(bearer_token));
  if (it == table->by_hash.end()) {
    return absl::UnauthenticatedError("unknown API key: ask an admin for a valid key");
  }
  if (it->second.revoked) {
    return absl::UnauthenticatedError(absl::StrCat(
        "API key '", it->second.caller.key_id, "' was revoked: ask an admin for a new key"));
  }
  return it->second.caller;
}

absl::StatusOr<std::string> AddKey(const std::string& path, const std::string& key_id, Role role) {
  if (!IsValidKeyId(key_id)) {
    return absl::InvalidArgumentError("--key-id must be 1..64 characters of [A-Za-z0-9._-]");
  }
  if (access(path.c_str(), F_OK) == 0) {
    auto existing = KeyStore::Load(path);
    if (!existing.ok()) return existing.status();
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("key_id", "") == key_id) {
        return absl::InvalidArgumentError(absl::StrCat("key id \"", key_id, "\" already exists in ",
                                                       path, ": choose another --key-id"));
      }
    }
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return absl::InternalError("the system random generator failed; retry");
  }
  std::string key = "hwk_" + HexEncode(raw, sizeof(raw));
  nlohmann::json j = {
      {"key_id", key_id}, {"role", std::string(RoleName(role))}, {"key_sha256", Sha256Hex(key)}};
  HW_RETURN_IF_ERROR(AppendLine(path, j.dump() + "\n"));
  return key;
}

absl::StatusOr<bool> RevokeKey(const std::string& path, const std::string& key_id) {
  HW_ASSIGN_OR_RETURN(std::shared_ptr<KeyTable> table, ParseKeyFile(path));
  auto it = table->hash_by_id.find(key_id);
  if (it == table->hash_by_id.end()) {
    return absl::NotFoundError(
        absl::StrCat("key id \"", key_id, "\" is not in ", path, ": nothing to revoke"));
  }
  if (table->by_hash[it->second].revoked) return false;
  nlohmann::json j = {
      {"revoke", key_id},
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone())}};
  HW_RETURN_IF_ERROR(AppendLine(path, j.dump() + "\n"));
  return true;
}

}  // namespace homeward::server
