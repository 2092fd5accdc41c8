// TarWriter: builds a POSIX ustar archive in memory (the case export, docs/API.md
// "ExportCase"). Regular files only, mode 0644, owner 0/0, one fixed mtime; names are
// relative, at most 100 bytes, of [A-Za-z0-9._/-] with no "..": the archive never names a path
// outside the directory it is unpacked into. No compression (photos are already compressed).
//
// THREAD SAFETY: one thread per TarWriter. OWNERSHIP: Finish returns the archive by value.
#ifndef HOMEWARD_SERVER_INTERNAL_TAR_WRITER_H_
#define HOMEWARD_SERVER_INTERNAL_TAR_WRITER_H_

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace homeward::server::internal {

class TarWriter {
 public:
  explicit TarWriter(int64_t mtime_s) : mtime_s_(mtime_s) {}

  // Appends one regular file. INVALID_ARGUMENT for a name that breaks the rules above or a
  // name already added.
  absl::Status Add(absl::string_view name, absl::string_view content);
  // The archive: the entries, then the two zero blocks that end a tar file.
  std::string Finish() &&;
  size_t size() const { return out_.size(); }

 private:
  int64_t mtime_s_;
  std::string out_;
  std::set<std::string, std::less<>> names_;  // to refuse duplicates
};

}  // namespace homeward::server::internal

#endif  // HOMEWARD_SERVER_INTERNAL_TAR_WRITER_H_
