// The export's tar writer (server/internal/tar_writer.h): names that could escape the unpacking
// directory are refused, and GNU tar, an independent implementation, reads back every entry.
#include "server/internal/tar_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace homeward::server::internal {
namespace {

namespace fs = std::filesystem;
std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command line (fixed, test-made paths only); its stdout into *out, stderr into
// *err; returns the exit status.
int Shell(const std::string& command, const std::string& dir, std::string* out, std::string* err) {
  const int rc = std::system((command + " >" + dir + "/out.txt 2>" + dir + "/err.txt").c_str());
  *out = ReadWholeFile(dir + "/out.txt");
  *err = ReadWholeFile(dir + "/err.txt");
  return rc;
}

TEST(TarWriter, RefusesNamesThatCouldEscapeOrRepeat) {
  TarWriter tar(0);
  ASSERT_TRUE(tar.Add("case.json", "{}").ok());
  for (const std::string& bad :
       {std::string(""), std::string("/etc/passwd"), std::string("../x"), std::string("a/../b"),
        std::string("photos/"), std::string("a b"), std::string("a//b"), std::string("x\n"),
        std::string(101, 'a'), std::string("case.json")}) {
    EXPECT_EQ(tar.Add(bad, "x").code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(TarWriter, GnuTarReadsEveryEntryByteForByte) {
  std::string binary(3000, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 7 + 3);
  const std::string exact_block(512, 'b');
  TarWriter tar(1700000000);
  ASSERT_TRUE(tar.Add("case.json", "{\"id\": \"1\"}").ok());
  ASSERT_TRUE(tar.Add("photos/12.jpg", binary).ok());
  ASSERT_TRUE(tar.Add("photos/13.bin", exact_block).ok());
  ASSERT_TRUE(tar.Add("empty", "").ok());
  const std::string archive = std::move(tar).Finish();
  EXPECT_EQ(archive.size() % 512, 0u);
  EXPECT_EQ(archive.substr(257, 6), std::string("ustar\0", 6));

  const std::string dir =
      (fs::temp_directory_path() / ("hw_tar_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::FILE* f = std::fopen((dir + "/a.tar").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(archive.data(), 1, archive.size(), f);
    std::fclose(f);
  }
  fs::create_directories(dir + "/x");
  std::string out, err;
  ASSERT_EQ(Shell("/bin/tar -xf " + dir + "/a.tar -C " + dir + "/x", dir, &out, &err), 0) << err;
  EXPECT_EQ(ReadWholeFile(dir + "/x/case.json"), "{\"id\": \"1\"}");
  EXPECT_EQ(ReadWholeFile(dir + "/x/photos/12.jpg"), binary);
  EXPECT_EQ(ReadWholeFile(dir + "/x/photos/13.bin"), exact_block);
  EXPECT_TRUE(fs::exists(dir + "/x/empty"));
  EXPECT_EQ(fs::file_size(dir + "/x/empty"), 0u);
  // tar -t lists exactly these entries (and no warnings about checksums or headers).
  ASSERT_EQ(Shell("/bin/tar -tf " + dir + "/a.tar", dir, &out, &err), 0) << err;
  EXPECT_EQ(out, "case.json\nphotos/12.jpg\nphotos/13.bin\nempty\n");
  EXPECT_EQ(err, "");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace homeward::server::internal
