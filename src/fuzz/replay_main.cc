// Runs a fuzz target's LLVMFuzzerTestOneInput over files, without libFuzzer: the normal and
// sanitizer builds use it to replay the committed seed corpus and every crash input the fuzzers
// found (tests/fuzz/), so those stay fixed. Arguments are files or directories (not recursive).
// Exits non-zero when no input was found, so an emptied or mistyped directory fails the test
// instead of passing it; a crash or a sanitizer report fails it too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Run(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replay %s (%zu bytes)\n", p.c_str(), bytes.size());
  // Own heap block, as libFuzzer gives: a read past the end is an ASan report.
  std::vector<uint8_t> copy(bytes);
  LLVMFuzzerTestOneInput(copy.data(), copy.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) Run(f), ++n;
    } else if (std::filesystem::is_regular_file(p)) {
      Run(p), ++n;
    }
  }
  std::fprintf(stderr, "%zu inputs replayed\n", n);
  return n == 0 ? 1 : 0;
}
