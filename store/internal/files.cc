#include "store/internal/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace homeward::store::internal {
namespace {

absl::Status ErrnoError(int err, absl::string_view what) {
  std::string text = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) {
    return absl::ResourceExhaustedError(
        absl::StrCat(text, " (the data directory's disk is full: free space, then retry)"));
  }
  if (err == ENOENT) return absl::NotFoundError(text);
  return absl::InternalError(text);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

absl::Status FsyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("open ", path));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError(err, absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FileNameForHash(const std::string& h) {
  return absl::StrCat(h.substr(0, 2), "/", h.substr(2, 2), "/", h);
}

absl::Status EnsureDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return FsyncPath(Dirname(dir), O_RDONLY | O_DIRECTORY);
  if (errno == EEXIST) return absl::OkStatus();
  return ErrnoError(errno, absl::StrCat("mkdir ", dir));
}

absl::Status WriteFileDurably(const std::string& root, const std::string& rel,
                              absl::string_view bytes) {
  const std::string path = absl::StrCat(root, "/", rel);
  // Fan-out directories, outermost first.
  for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
    absl::Status s = EnsureDir(absl::StrCat(root, "/", rel.substr(0, slash)));
    if (!s.ok()) return s;
  }
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(path, ".", ::getpid(), ".", counter++, ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("create ", tmp));
  absl::Status s = WriteAll(fd, bytes);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoError(errno, "fsync");
  if (::close(fd) != 0 && s.ok()) s = ErrnoError(errno, "close");
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError(errno, "rename");
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return FsyncPath(Dirname(path), O_RDONLY | O_DIRECTORY);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("open ", path));
  std::string out;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return ErrnoError(err, "read");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::Status UnlinkDurably(const std::string& root, const std::string& rel) {
  const std::string path = absl::StrCat(root, "/", rel);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError(errno, absl::StrCat("unlink ", path));
  }
  return FsyncPath(Dirname(path), O_RDONLY | O_DIRECTORY);
}

absl::Status WalkFiles(const std::string& root, const std::function<void(const std::string&)>& fn) {
  std::vector<std::string> stack = {""};
  while (!stack.empty()) {
    const std::string rel = std::move(stack.back());
    stack.pop_back();
    const std::string dir = rel.empty() ? root : absl::StrCat(root, "/", rel);
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) continue;
      return ErrnoError(errno, absl::StrCat("opendir ", dir));
    }
    std::vector<std::string> files;
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string child = rel.empty() ? name : absl::StrCat(rel, "/", name);
      struct stat st;
      if (::lstat(absl::StrCat(root, "/", child).c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        stack.push_back(child);
      } else {
        files.push_back(child);
      }
    }
    ::closedir(d);
    for (const std::string& f : files) fn(f);
  }
  return absl::OkStatus();
}

}  // namespace homeward::store::internal
