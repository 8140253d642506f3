#include "sensor/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace teiten {
namespace {

std::string Where(const std::string& file, const toml::node& n) {
  return fmt::format("{}:{}", file, n.source().begin.line);
}

Result<std::string> GetString(const toml::table& t, const std::string& key, const std::string& file,
                              bool required, const std::string& fallback = "") {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) {
      return InvalidArgument(fmt::format("{}: missing key '{}'", Where(file, t), key));
    }
    return fallback;
  }
  if (!n->is_string()) {
    return InvalidArgument(fmt::format("{}: key '{}': expected a string", Where(file, *n), key));
  }
  return std::string(*n->value<std::string>());
}

Status CheckKeys(const toml::table& t, const std::set<std::string>& allowed,
                 const std::string& file, const std::string& section) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(std::string(k.str()))) {
      return InvalidArgument(
          fmt::format("{}: unknown key '{}' in [{}]", Where(file, v), k.str(), section));
    }
  }
  return OkStatus();
}

Status GetNumber(const toml::table& t, const std::string& key, const std::string& file, double lo,
                 double hi, double* out) {
  const toml::node* n = t.get(key);
  if (!n) return OkStatus();
  std::optional<double> v = n->value<double>();
  if (!v || !(*v >= lo && *v <= hi)) {
    return InvalidArgument(
        fmt::format("{}: key '{}': expected a number from {} to {}", Where(file, *n), key, lo, hi));
  }
  *out = *v;
  return OkStatus();
}

template <typename T>
Status GetInt(const toml::table& t, const std::string& key, const std::string& file, double lo,
              double hi, double scale, T* out) {
  double v = static_cast<double>(*out) / scale;
  RETURN_IF_ERROR(GetNumber(t, key, file, lo, hi, &v));
  *out = static_cast<T>(v * scale);
  return OkStatus();
}

std::string Resolve(const std::string& base_file, const std::string& p) {
  if (p.empty() || base_file.empty() || p[0] == '/') return p;
  return (std::filesystem::path(base_file).parent_path() / p).lexically_normal().string();
}

bool ValidId(const std::string& id) {
  // It names files and shows in paths and URLs: not "..", not hidden, not a path.
  if (id.empty() || id.size() > 64 || id[0] == '.' || id[0] == '-') return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const SensorConfig* Config::FindSensor(const std::string& id) const {
  for (const auto& s : sensors) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

Result<Config> ParseConfig(const std::string& text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(fmt::format("{}:{}:{}: {}", file, e.source().begin.line,
                                       e.source().begin.column, e.description()));
  }
  Config cfg;
  cfg.path = file;
  RETURN_IF_ERROR(
      CheckKeys(root, {"store", "geo", "sensor", "collect", "daemon"}, file, "top level"));
  if (const toml::table* c = root["collect"].as_table()) {
    cfg.has_collect = true;
    CollectConfig& cc = cfg.collect;
    RETURN_IF_ERROR(CheckKeys(*c,
                              {"listen", "cert", "key", "ca", "crl", "metrics", "max_batch_mb",
                               "requests_per_second", "burst", "commit_wait_seconds"},
                              file, "collect"));
    ASSIGN_OR_RETURN(cc.listen, GetString(*c, "listen", file, false, cc.listen));
    for (auto [key, field] :
         {std::pair{"cert", &cc.cert}, {"key", &cc.key}, {"ca", &cc.ca}, {"crl", &cc.crl}}) {
      ASSIGN_OR_RETURN(std::string v, GetString(*c, key, file, false));
      *field = Resolve(file, v);
    }
    ASSIGN_OR_RETURN(cc.metrics, GetString(*c, "metrics", file, false, cc.metrics));
    RETURN_IF_ERROR(GetInt(*c, "max_batch_mb", file, 1, 1024, 1 << 20, &cc.max_batch_bytes));
    RETURN_IF_ERROR(GetNumber(*c, "requests_per_second", file, 0.01, 1e6, &cc.requests_per_second));
    RETURN_IF_ERROR(GetNumber(*c, "burst", file, 1, 1e6, &cc.burst));
    RETURN_IF_ERROR(GetNumber(*c, "commit_wait_seconds", file, 1, 3600, &cc.commit_wait_seconds));
  }
  if (const toml::table* d = root["daemon"].as_table()) {
    cfg.has_daemon = true;
    DaemonConfig& dc = cfg.daemon;
    RETURN_IF_ERROR(CheckKeys(
        *d, {"sensor",        "interface",    "capture_buffer_mb", "snaplen",    "watch_dir",
             "netfilter_log", "spool",        "spool_budget_mb",   "collector",  "cert",
             "key",           "ca",           "batch_seconds",     "batch_rows", "raw_dir",
             "raw_file_mb",   "raw_total_mb", "raw_max_age_days",  "user",       "metrics"},
        file, "daemon"));
    ASSIGN_OR_RETURN(dc.sensor, GetString(*d, "sensor", file, false));
    ASSIGN_OR_RETURN(dc.interface, GetString(*d, "interface", file, false));
    ASSIGN_OR_RETURN(dc.collector, GetString(*d, "collector", file, false));
    ASSIGN_OR_RETURN(dc.user, GetString(*d, "user", file, false));
    ASSIGN_OR_RETURN(dc.metrics, GetString(*d, "metrics", file, false, dc.metrics));
    for (auto [key, field] : {std::pair{"watch_dir", &dc.watch_dir},
                              {"netfilter_log", &dc.netfilter_log},
                              {"spool", &dc.spool},
                              {"cert", &dc.cert},
                              {"key", &dc.key},
                              {"ca", &dc.ca},
                              {"raw_dir", &dc.raw_dir}}) {
      ASSIGN_OR_RETURN(std::string v, GetString(*d, key, file, false));
      *field = Resolve(file, v);
    }
    RETURN_IF_ERROR(
        GetInt(*d, "capture_buffer_mb", file, 1, 4096, 1 << 20, &dc.capture_buffer_bytes));
    RETURN_IF_ERROR(GetInt(*d, "snaplen", file, 64, 262144, 1, &dc.snaplen));
    RETURN_IF_ERROR(
        GetInt(*d, "spool_budget_mb", file, 1, 1 << 24, 1 << 20, &dc.spool_budget_bytes));
    RETURN_IF_ERROR(GetNumber(*d, "batch_seconds", file, 0.1, 3600, &dc.batch_seconds));
    RETURN_IF_ERROR(GetInt(*d, "batch_rows", file, 1, 1 << 22, 1, &dc.batch_rows));
    RETURN_IF_ERROR(GetInt(*d, "raw_file_mb", file, 0.01, 1 << 20, 1 << 20, &dc.raw_file_bytes));
    RETURN_IF_ERROR(GetInt(*d, "raw_total_mb", file, 1, 1 << 24, 1 << 20, &dc.raw_total_bytes));
    RETURN_IF_ERROR(GetNumber(*d, "raw_max_age_days", file, 0.001, 36500, &dc.raw_max_age_days));
  }
  if (const toml::table* st = root["store"].as_table()) {
    RETURN_IF_ERROR(CheckKeys(*st, {"path", "timezone", "merge_cold_after"}, file, "store"));
    ASSIGN_OR_RETURN(std::string p, GetString(*st, "path", file, false, ""));
    cfg.store_path = Resolve(file, p);
    ASSIGN_OR_RETURN(cfg.timezone, GetString(*st, "timezone", file, false, cfg.timezone));
    if (const toml::node* n = st->get("merge_cold_after")) {
      // Whole seconds, from 1 (tests) to a week: merges compare it with parts' mtimes, and the
      // background merger of an ingest sleeps until the keys it left hot are this old.
      std::optional<int64_t> v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
      if (!v || *v < 1 || *v > 604800) {
        return InvalidArgument(
            fmt::format("{}: key 'merge_cold_after': expected whole seconds from 1 to 604800",
                        Where(file, *n)));
      }
      cfg.merge_cold_after = *v;
    }
  }
  if (const toml::table* g = root["geo"].as_table()) {
    RETURN_IF_ERROR(CheckKeys(*g, {"country_db", "asn_db"}, file, "geo"));
    cfg.geo_where = Where(file, *g);
    ASSIGN_OR_RETURN(std::string c, GetString(*g, "country_db", file, false));
    ASSIGN_OR_RETURN(std::string a, GetString(*g, "asn_db", file, false));
    cfg.country_db = Resolve(file, c);
    cfg.asn_db = Resolve(file, a);
  }
  if (const toml::node* sn = root.get("sensor")) {
    const toml::array* arr = sn->as_array();
    if (!arr) {
      return InvalidArgument(
          fmt::format("{}: 'sensor' must be an array of tables ([[sensor]])", Where(file, *sn)));
    }
    for (const toml::node& item : *arr) {
      const toml::table* t = item.as_table();
      if (!t)
        return InvalidArgument(
            fmt::format("{}: [[sensor]] entry is not a table", Where(file, item)));
      RETURN_IF_ERROR(
          CheckKeys(*t, {"id", "name", "group", "country", "mode", "prefixes"}, file, "[sensor]"));
      SensorConfig s;
      ASSIGN_OR_RETURN(s.id, GetString(*t, "id", file, true));
      if (!ValidId(s.id)) {
        return InvalidArgument(
            fmt::format("{}: key 'id': '{}' must be 1-64 of [a-z0-9._-], not starting with . or -",
                        Where(file, *t->get("id")), s.id));
      }
      if (cfg.FindSensor(s.id)) {
        return InvalidArgument(fmt::format("{}: key 'id': sensor '{}' defined twice",
                                           Where(file, *t->get("id")), s.id));
      }
      ASSIGN_OR_RETURN(s.name, GetString(*t, "name", file, false, s.id));
      ASSIGN_OR_RETURN(s.group, GetString(*t, "group", file, false, "default"));
      ASSIGN_OR_RETURN(s.country, GetString(*t, "country", file, false, ""));
      if (!s.country.empty()) {
        bool ok = s.country.size() == 2 && std::isalpha(static_cast<unsigned char>(s.country[0])) &&
                  std::isalpha(static_cast<unsigned char>(s.country[1]));
        if (!ok) {
          return InvalidArgument(fmt::format("{}: key 'country': '{}' is not a two-letter code",
                                             Where(file, *t->get("country")), s.country));
        }
        for (char& c : s.country)
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      ASSIGN_OR_RETURN(std::string mode, GetString(*t, "mode", file, false, "darknet"));
      if (mode == "darknet") {
        s.mode = SensorMode::kDarknet;
      } else if (mode == "host") {
        s.mode = SensorMode::kHost;
      } else {
        return InvalidArgument(fmt::format("{}: key 'mode': '{}' is neither darknet nor host",
                                           Where(file, *t->get("mode")), mode));
      }
      const toml::node* pn = t->get("prefixes");
      if (!pn || !pn->is_array() || pn->as_array()->empty()) {
        return InvalidArgument(
            fmt::format("{}: sensor '{}': key 'prefixes' must list at least one "
                        "CIDR prefix",
                        Where(file, pn ? *pn : static_cast<const toml::node&>(*t)), s.id));
      }
      for (const toml::node& pe : *pn->as_array()) {
        auto txt = pe.value<std::string>();
        auto p = txt ? Prefix::Parse(*txt) : std::nullopt;
        if (!p) {
          return InvalidArgument(
              fmt::format("{}: sensor '{}': key 'prefixes': '{}' is not a CIDR "
                          "prefix",
                          Where(file, pe), s.id, txt ? *txt : "(not a string)"));
        }
        // An address with host bits set is most likely a typo for another network: say so
        // rather than widen it silently (198.124.152.15/16 would monitor 198.124.0.0/16).
        auto addr = IpAddr::Parse(std::string_view(*txt).substr(0, txt->find('/')));
        if (addr && !(*addr == p->base)) {
          return InvalidArgument(fmt::format(
              "{}: sensor '{}': key 'prefixes': '{}' has host bits set (the network is {})",
              Where(file, pe), s.id, *txt, p->ToString()));
        }
        s.prefixes.push_back(*p);
      }
      cfg.sensors.push_back(std::move(s));
    }
  }
  return cfg;
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    errno = errno ? errno : ENOENT;
    return IoError("config " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

}  // namespace teiten
