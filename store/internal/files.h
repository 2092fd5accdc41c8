// Content-addressed photo files: SHA-256 naming, durable writes (temp + fsync + rename +
// fsync dir), reads, unlinks, and a walk for the orphan sweep. Paths are built only from
// hex digests, never from caller text. Thread-compatible (no shared state).
#ifndef HOMEWARD_STORE_INTERNAL_FILES_H_
#define HOMEWARD_STORE_INTERNAL_FILES_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/sha256.h"

namespace homeward::store::internal {

using ::homeward::base::IsSha256Hex;  // 64 lowercase hex digits
using ::homeward::base::Sha256Hex;    // lowercase hex SHA-256

// "ab/cd/abcd...": the file name (relative to the photos root) of a digest.
std::string FileNameForHash(const std::string& sha256_hex);

// Writes `bytes` to root/rel durably: creates the fan-out dirs, writes a temp file in the
// target dir, fsyncs it, renames it over rel and fsyncs the dir. RESOURCE_EXHAUSTED on
// ENOSPC/EDQUOT, INTERNAL on other errors.
absl::Status WriteFileDurably(const std::string& root, const std::string& rel,
                              absl::string_view bytes);

// NOT_FOUND if absent (the caller maps that to DATA_LOSS when a row expects it).
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Unlinks root/rel (absent is fine) and fsyncs its directory.
absl::Status UnlinkDurably(const std::string& root, const std::string& rel);

// Calls fn(rel_path) for every non-directory entry below root (symlinks are not followed).
absl::Status WalkFiles(const std::string& root, const std::function<void(const std::string&)>& fn);

// Creates `dir` (one level) if missing and fsyncs its parent.
absl::Status EnsureDir(const std::string& dir);

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_INTERNAL_FILES_H_
