// SHA-256 and hex helpers shared by store/ (photo file names) and server/ (hashed API keys).
// Pure functions: thread-safe.
#ifndef HOMEWARD_BASE_SHA256_H_
#define HOMEWARD_BASE_SHA256_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace homeward::base {

// Lowercase hex of n bytes.
std::string HexEncode(const unsigned char* data, size_t n);

// Lowercase hex SHA-256 of `bytes` (OpenSSL's libcrypto).
std::string Sha256Hex(absl::string_view bytes);

// true for 64 lowercase hex digits.
bool IsSha256Hex(absl::string_view s);

}  // namespace homeward::base

#endif  // HOMEWARD_BASE_SHA256_H_
