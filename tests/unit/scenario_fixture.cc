#include "scenario_fixture.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

#include "common/observation.h"
#include "enrich/geo.h"
#include "ingest/ingest.h"
#include "sensor/config.h"
#include "simulate/scenario.h"
#include "store/store.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace teiten::testing {
namespace {

// Bumped when what the fixture writes changes shape (files, config keys).
constexpr int kFixtureVersion = 2;
// Traces per file: a month's days, so that a quarter is a few files per sensor.
constexpr int kDaysPerFile = 31;

uint64_t Fnv1a(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("reading " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A TOML basic string.
std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The libraries whose code decides the bytes of traces and stores, as built in this tree.
std::vector<std::string> CodeFiles() {
  std::vector<std::string> out;
  std::string_view all = TEITEN_FIXTURE_LIBS;
  while (!all.empty()) {
    size_t semi = all.find('|');
    if (semi != 0) out.emplace_back(all.substr(0, semi));
    all = semi == std::string_view::npos ? std::string_view{} : all.substr(semi + 1);
  }
  return out;
}

Result<std::string> Stamp(const simulate::Scenario& sc, const std::string& country_db,
                          const std::string& asn_db) {
  ASSIGN_OR_RETURN(std::string text, ReadWhole(sc.path));
  std::string stamp = fmt::format("fixture {}\nscenario {} {:016x}\nscale {}\n", kFixtureVersion,
                                  sc.path, Fnv1a(text), sc.scale);
  for (const std::string& lib : CodeFiles()) {
    ASSIGN_OR_RETURN(std::string bytes, ReadWhole(lib));
    stamp += fmt::format("code {} {:016x}\n", lib, Fnv1a(bytes));
  }
  for (const std::string& db : {country_db, asn_db}) {
    std::error_code ec;
    if (db.empty() || !fs::exists(db, ec)) continue;
    stamp += fmt::format("geo {} {}\n", db, fs::file_size(db, ec));
  }
  return stamp;
}

class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string ConfigToml(const simulate::Scenario& sc, const std::string& country_db,
                       const std::string& asn_db) {
  std::string t = fmt::format(
      "# Written by the test fixture for scenario {} at scale {}.\n"
      "[store]\npath = \"store\"\ntimezone = \"UTC\"\n\n[geo]\ncountry_db = {}\n",
      sc.name, sc.scale, Quoted(country_db));
  if (!asn_db.empty()) t += fmt::format("asn_db = {}\n", Quoted(asn_db));
  for (const simulate::ScenarioSensor& s : sc.sensors) {
    t += fmt::format("\n[[sensor]]\nid = {}\nname = {}\ngroup = {}\ncountry = {}\nprefixes = [",
                     Quoted(s.id), Quoted(s.id), Quoted(s.group), Quoted(s.country));
    for (size_t i = 0; i < s.prefixes.size(); ++i) {
      t += (i ? ", " : "") + Quoted(s.prefixes[i].ToString());
    }
    t += "]\n";
  }
  return t;
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) return IoError("writing " + path);
  return OkStatus();
}

Status Build(const simulate::Scenario& sc, const std::string& dir, const std::string& country_db,
             const std::string& asn_db) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return IoError("creating " + dir + ": " + ec.message());

  ASSIGN_OR_RETURN(std::unique_ptr<GeoDb> geo, GeoDb::Open(country_db, asn_db));
  std::vector<simulate::SourceRange> ranges;
  for (const GeoRange& r : geo->v4_ranges()) {
    if (!r.info.country) continue;
    std::string cc = CountryCodeString(r.info.country);
    ranges.push_back({r.first, r.last, {cc[0], cc[1]}, r.info.asn});
  }

  const std::string traces = dir + "/traces";
  simulate::ScenarioTruth truth;
  RETURN_IF_ERROR(
      simulate::RunScenario(sc, ranges, {.dir = traces, .days_per_file = kDaysPerFile}, &truth));
  fs::rename(traces + "/ground_truth.json", dir + "/ground_truth.json", ec);
  if (ec) return IoError("moving the ground truth to " + dir + ": " + ec.message());

  RETURN_IF_ERROR(WriteFile(dir + "/teiten.toml", ConfigToml(sc, country_db, asn_db)));
  ASSIGN_OR_RETURN(Config cfg, LoadConfig(dir + "/teiten.toml"));
  ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                   Store::Open(cfg.store_path, {.create = true, .timezone = cfg.timezone}));
  // Several days per file: ingest's cost is mostly per file, not per packet.
  std::map<std::string, std::pair<std::string, uint64_t>> files;  // path → (sensor, packets)
  std::vector<std::string> order;
  for (const simulate::ScenarioTruth::File& f : truth.files) {
    auto [it, fresh] = files.try_emplace(f.path, f.sensor, 0);
    it->second.second += f.truth.packets;
    if (fresh) order.push_back(f.path);
  }
  Ingester ing(store.get(), geo.get());
  for (const std::string& path : order) {
    const auto& [sensor_id, packets] = files[path];
    const SensorConfig* sensor = cfg.FindSensor(sensor_id);
    if (!sensor) return Internal("scenario fixture: no sensor " + sensor_id + " in the config");
    ASSIGN_OR_RETURN(IngestSummary sum, ing.IngestFile(*sensor, path));
    if (!sum.error.empty()) return DataLoss(path + ": " + sum.error);
    if (sum.kept != packets) {
      return Internal(fmt::format("{}: kept {} of {} generated packets", path, sum.kept, packets));
    }
    fs::remove(path, ec);  // the store holds them now
  }
  fs::remove_all(traces, ec);
  return OkStatus();
}

}  // namespace

Result<ScenarioStore> ScenarioStoreFor(const std::string& scenario, double scale) {
  const std::string src = SourceDir();
  std::string where = scenario;
  if (where.find('/') == std::string::npos && !where.ends_with(".toml")) {
    std::string shipped = src + "/data/scenarios/" + scenario + ".toml";
    if (fs::exists(shipped)) where = shipped;
  }
  ASSIGN_OR_RETURN(simulate::Scenario sc, simulate::LoadScenario(where));
  if (scale < 0) return InvalidArgument(fmt::format("scenario fixture: scale {} < 0", scale));
  if (scale > 0) sc.scale = scale;
  sc.path = fs::absolute(sc.path).lexically_normal().string();

  const std::string country_db = fs::absolute(CountryDb()).lexically_normal().string();
  if (!fs::exists(country_db)) {
    return NotFound("no geo database at " + country_db + " (run scripts/setup.sh)");
  }
  std::string asn_db = src + "/var/geo/asn.mmdb";
  asn_db = fs::exists(asn_db) ? fs::absolute(asn_db).lexically_normal().string() : "";

  const std::string cache = std::string(TEITEN_FIXTURE_BINARY_DIR) + "/scenario-cache";
  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec) return IoError("creating " + cache + ": " + ec.message());
  const std::string key = fmt::format("{}-{}", sc.name, sc.scale);
  const std::string dir = cache + "/" + key;
  FileLock lock(cache + "/" + key + ".lock");
  if (!lock.ok()) return IoError("locking " + cache + "/" + key + ".lock");

  ASSIGN_OR_RETURN(std::string stamp, Stamp(sc, country_db, asn_db));
  auto old = ReadWhole(dir + "/STAMP");
  if (!old.ok() || *old != stamp) {
    Status built = Build(sc, dir, country_db, asn_db);
    if (!built.ok()) {
      return Status(built.code(), "scenario fixture " + key + ": " + built.message());
    }
    // Last: a build killed before this point is redone by the next caller.
    RETURN_IF_ERROR(WriteFile(dir + "/STAMP", stamp));
  }
  return ScenarioStore{dir + "/store", dir + "/teiten.toml", dir + "/ground_truth.json"};
}

}  // namespace teiten::testing
