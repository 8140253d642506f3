// What every teiten command shares: the common options, how a failure is reported, how the config,
// the store, the geo databases and a period query are opened, and how keys are named in output.
// Each command group (cmd_*.cc) registers its subcommands through AddCommand.
#pragma once

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/period.h"
#include "analysis/query.h"
#include "analysis/tools.h"
#include "cli/table.h"
#include "common/status.h"
#include "enrich/geo.h"
#include "enrich/names.h"
#include "sensor/config.h"
#include "store/store.h"

namespace teiten {

// Options every command has (--config, --store, --format) and query commands add (--lang,
// --sensor, --group).
struct Common {
  std::string config_path;
  std::string store_path;
  std::string format = "table";
  std::string lang = "en";
  std::vector<std::string> sensors;
  std::vector<std::string> groups;
};

// The subcommands and what runs when one is parsed; main() runs the parsed one's.
class Commands {
 public:
  Commands(CLI::App& app, Common& common) : app_(app), common_(common) {}
  // A subcommand; with `query`, it takes --lang, --sensor and --group too.
  CLI::App* Add(const std::string& name, const std::string& help, bool query = false);
  // Adds --config, --store and --format (and with `query`, the query options) to `sub`.
  void AddCommonOptions(CLI::App* sub, bool query);
  void OnParsed(CLI::App* sub, std::function<int()> run) { runs_.push_back({sub, std::move(run)}); }
  // The exit code of the parsed subcommand's run, or nullopt when none was registered for it.
  std::optional<int> RunParsed() const;
  CLI::App& app() { return app_; }
  Common& common() { return common_; }

 private:
  CLI::App& app_;
  Common& common_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs_;
};

// Each group of commands (src/cli/cmd_*.cc).
void AddIngestCommand(Commands& cmds);   // ingest
void AddStoreCommands(Commands& cmds);   // geo, merge, verify, rebuild, forget, retain,
                                         // collect, sensor, sensors
void AddQueryCommands(Commands& cmds);   // top, series, summary, ip, outages
void AddRowCommands(Commands& cmds);     // scans, dos, payloads, os
void AddReportCommands(Commands& cmds);  // report
void AddServeCommands(Commands& cmds);   // serve, serve-user, serve-token
void AddFeedCommands(Commands& cmds);    // feed
void AddNotifyCommands(Commands& cmds);  // notify
void AddMustanCommands(Commands& cmds);  // mustan

// Prints "teiten: <status>" on stderr; exit code 2 for a bad argument or a missing thing, else 1.
int Fail(const Status& s);
// The config: --config, $TEITEN_CONFIG or ./teiten.toml; --store overrides its store path.
Result<Config> LoadConfigFor(const Common& c, bool need_store = true);
Result<OutputFormat> ParseFormat(const std::string& f);
Lang ParseLang(const std::string& l);
// A previous rank as text: a number, "new", "out of top N" or "no data".
std::string RankText(int r, Lang lang, int cutoff);
// A key of a dimension as a person reads it ("23/tcp telnet", "JP Japan", "AS4713 NTT…").
std::string KeyName(const Store& store, const AsnNames* names, Dimension d, uint64_t key,
                    Lang lang);
// The config's geo databases; an error names the config's [geo] table as well as the file.
Result<std::unique_ptr<GeoDb>> OpenGeoFor(const Config& cfg, bool walk);
// The config's databases for naming ASNs, or nullptr when there are none or they do not open.
std::unique_ptr<GeoDb> OpenGeoQuietly(const Config& cfg);
// The names of these sources' networks (address, stored ASN), looked up one by one when that can
// be vouched for, else by the walk.
AsnNames NameSourceNetworks(const Config& cfg,
                            const std::vector<std::pair<IpAddr, uint32_t>>& sources);
Result<std::unique_ptr<Store>> OpenStoreFor(const Common& c, Config* cfg_out);

// What every period query needs: the period, the output format, the store and the sensors.
struct QueryContext {
  Period period;
  OutputFormat format = OutputFormat::kTable;
  Config cfg;
  std::unique_ptr<Store> store;
  SensorSelection sel;
};
Result<QueryContext> PrepareQuery(const Common& c, const std::string& period_text);
// The same for a run that is repeated (feeds, notification lists): over --period, or with
// --since-last-run STATE over the days after the last successful run's, up to the store's last
// day with data (a first run: that day alone). `nothing_new` is set when no day has arrived since;
// `last_day` is then the store's last day with data. Exactly one of the two must be given.
struct RunContext {
  QueryContext q;
  bool nothing_new = false;
  int32_t last_day = 0;
};
Result<RunContext> PrepareRun(const Common& c, const std::string& period_text,
                              const std::string& state_file);
// A run's days as messages and file names show them: "2018-08-12" or "2018-08-01..2018-08-15".
std::string RunLabel(const Period& p);
// `body` to stdout (`out` "" or "-") or to the file `out`, written atomically (common/files.h).
Status WriteOutput(const std::string& out, std::string_view body);

// The research-scanner list: a file the user names, or the one shipped in the binary.
Result<ResearchNetworks> LoadResearch(const std::string& path);
// A time in the store's time zone, "YYYY-MM-DD hh:mm:ss".
std::string LocalTime(const Store& store, int64_t us);
// Warns on stderr when the period reaches before the observations retention kept.
void WarnIfRetained(const Store& store, const Period& period);
// The store directory of --store or the config, or "" when neither names one.
std::string StorePathFor(const Common& c);
// Blocks SIGTERM and SIGINT in every thread (the daemons wait for them in the main one) and
// ignores SIGPIPE; returns the set to wait for.
sigset_t BlockStopSignals();
// Optional "--port P": empty text means every port.
Result<std::optional<PortKey>> OptionalPort(const std::string& text);

}  // namespace teiten
