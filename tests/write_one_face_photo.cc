// Writes the one-face photo of tests/embed_test_util.h (OneFaceSample2: sample2.jpg cut to its
// right-hand face) to the file named by argv[1] (its folder created), for the tests that take a photo file
// (python_client_test). Exit 0 on success, 1 when the demo photo or the file cannot be used.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/embed_test_util.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.jpg\n", argv[0]);
    return 2;
  }
  try {
    const std::string jpeg = homeward::testing::OneFaceSample2();
    const std::filesystem::path parent = std::filesystem::path(argv[1]).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    std::ofstream out(argv[1], std::ios::binary);
    out.write(jpeg.data(), static_cast<std::streamsize>(jpeg.size()));
    if (!out.good()) {
      std::fprintf(stderr, "cannot write %s\n", argv[1]);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
