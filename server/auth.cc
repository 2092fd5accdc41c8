#include "server/auth.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/sha256.h"

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

absl::StatusOr<KeyStore> KeyStore::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read the API key file ", path,
        ": create it with `homeward-server --add-key ROLE --key-id NAME --api-keys ", path, "`"));
  }
  KeyStore store;
  std::map<std::string, bool> ids;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    auto where = [&] { return absl::StrCat(path, ":", line_no, ": "); };
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("key_id") || !j.contains("role") ||
        !j.contains("key_sha256") || !j["key_id"].is_string() || !j["role"].is_string() ||
        !j["key_sha256"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected {\"key_id\": ..., \"role\": ..., \"key_sha256\": ...}"));
    }
    Caller caller;
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
    if (ids[caller.key_id]) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "key_id \"", caller.key_id, "\" appears twice"));
    }
    ids[caller.key_id] = true;
    store.by_hash_[hash] = std::move(caller);
  }
  return store;
}

absl::StatusOr<Caller> KeyStore::Authenticate(absl::string_view bearer_token) const {
  if (bearer_token.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send the metadata `authorization: Bearer <key>`");
  }
  auto it = by_hash_.find(Sha256Hex(bearer_token));
  if (it == by_hash_.end()) {
    return absl::UnauthenticatedError("unknown API key: ask an admin for a valid key");
  }
  return it->second;
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
  std::string line = j.dump() + "\n";
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  bool ok =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok)
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
  return key;
}

}  // namespace homeward::server
