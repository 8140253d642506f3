// libFuzzer target for the store's MANIFEST loader (Store::Open): the input is written as the
// MANIFEST of a temporary store directory (with a current FORMAT file), the store opened, and
// everything the manifest names looked up through the store: each day's rollups, each period's
// rollup, each segment and each source index. The directory holds no other files, so those
// lookups must fail cleanly whatever names, numbers or paths the manifest holds.
// An input holding the line "--chapter--" is two files: before it the root (MANIFEST), after it
// chapter 1 (man/00000001.tman), so a root naming chapter 1 reads fuzzed chapter text.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/store.h"

namespace {

void WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr) abort();
  if (size != 0 && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
}

const std::string& StoreDir() {
  static const std::string dir = [] {
    const char* tmp = getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/teiten-manifest-fuzz-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) abort();
    const char kFormat[] = "teiten-store 2\n";
    WriteFile(templ + "/FORMAT", reinterpret_cast<const uint8_t*>(kFormat), sizeof(kFormat) - 1);
    if (mkdir((templ + "/man").c_str(), 0755) != 0) abort();
    return templ;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = StoreDir();
  static const std::string kSplit = "\n--chapter--\n";
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t at = all.find(kSplit);
  const size_t root = at == std::string_view::npos ? size : at;
  WriteFile(dir + "/MANIFEST", data, root);
  const size_t rest = at == std::string_view::npos ? size : at + kSplit.size();
  WriteFile(dir + "/man/00000001.tman", data + rest, size - rest);
  auto opened = teiten::Store::Open(dir, teiten::Store::Options{});
  if (!opened.ok()) return 0;
  const auto& store = *opened;
  const teiten::Manifest& m = store->manifest();
  for (const auto& s : m.sensors) (void)store->SensorIndex(s.id);
  for (const auto& in : m.inputs) {
    (void)store->FindInput(in.hash);
    if (in.index != 0) (void)store->OpenIndex(in.index);
  }
  for (const auto& seg : m.segments) (void)store->OpenSegment(seg.id);
  for (const auto& [day, files] : m.days) (void)store->Day(day);
  for (const auto& [label, file] : m.periods) (void)store->PeriodParts(label);
  (void)store->StoredBytes();
  return 0;
}
