#include "server/internal/tar_writer.h"

#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace homeward::server::internal {
namespace {

constexpr size_t kBlock = 512;

// Writes `value` as `width - 1` octal digits and a NUL, as ustar numeric fields are. The
// caller keeps value below 8^(width - 1) (Add checks the size; the other fields are small).
void Octal(char* field, size_t width, uint64_t value) {
  for (size_t i = width - 1; i-- > 0; value >>= 3) field[i] = static_cast<char>('0' + (value & 7));
  field[width - 1] = '\0';
}

// The largest entry: 11 octal digits in the size field.
constexpr uint64_t kMaxEntryBytes = (uint64_t{1} << 33) - 1;

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 100 || name.front() == '/' || name.back() == '/') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return !absl::StrContains(name, "..") && !absl::StrContains(name, "//");
}

}  // namespace

absl::Status TarWriter::Add(absl::string_view name, absl::string_view content) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tar entry name \"", name, "\" is not a short relative path"));
  }
  if (content.size() > kMaxEntryBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tar entry \"", name, "\" is over 8 GiB, more than ustar can hold"));
  }
  if (!names_.emplace(name).second) {
    return absl::InvalidArgumentError(absl::StrCat("tar entry \"", name, "\" added twice"));
  }

  char header[kBlock];
  std::memset(header, 0, sizeof(header));
  std::memcpy(header, name.data(), name.size());                                // name[100]
  Octal(header + 100, 8, 0644);                                                 // mode
  Octal(header + 108, 8, 0);                                                    // uid
  Octal(header + 116, 8, 0);                                                    // gid
  Octal(header + 124, 12, content.size());                                      // size
  Octal(header + 136, 12, static_cast<uint64_t>(mtime_s_ < 0 ? 0 : mtime_s_));  // mtime
  header[156] = '0';                         // typeflag: regular file
  std::memcpy(header + 257, "ustar", 6);     // magic "ustar\0"
  std::memcpy(header + 263, "00", 2);        // version
  std::memcpy(header + 265, "homeward", 8);  // uname
  std::memcpy(header + 297, "homeward", 8);  // gname
  // The checksum is the byte sum of the header with the checksum field read as spaces.
  std::memset(header + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  std::snprintf(header + 148, 8, "%06o", sum);  // six digits, NUL, then the space kept below
  header[155] = ' ';

  out_.append(header, kBlock);
  out_.append(content.data(), content.size());
  out_.append((kBlock - content.size() % kBlock) % kBlock, '\0');
  return absl::OkStatus();
}

std::string TarWriter::Finish() && {
  out_.append(2 * kBlock, '\0');
  return std::move(out_);
}

}  // namespace homeward::server::internal
