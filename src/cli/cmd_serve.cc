// teiten serve and its users and tokens (src/web/).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "analysis/dos.h"
#include "analysis/os_guesses.h"
#include "analysis/payloads.h"
#include "analysis/query.h"
#include "analysis/scans.h"
#include "analysis/sensor_health.h"
#include "analysis/tools.h"
#include "cli/cli_common.h"
#include "cli/table.h"
#include "daemon/collector.h"
#include "daemon/sensor_daemon.h"
#include "enrich/names.h"
#include "ingest/ingest.h"
#include "report/report.h"
#include "sensor/config.h"
#include "simulate/simulate_command.h"
#include "store/store.h"
#include "store/verify.h"
#include "web/access.h"
#include "web/server.h"

namespace teiten {
namespace {

// `teiten serve`: the dashboard and JSON API until SIGTERM or SIGINT (src/web/server.h).
int RunServe(const Common& c, web::ServeOptions o) {
  sigset_t stop_signals = BlockStopSignals();
  o.store_dir = StorePathFor(c);
  if (o.store_dir.empty()) return Fail(InvalidArgument("no store: give --store or --config"));
  web::WebServer server(o);
  if (Status st = server.Start(); !st.ok()) return Fail(st);
  std::cerr << fmt::format("teiten serve: {} on {}://{}:{}/ ({}{})\n", o.store_dir,
                           o.tls_cert.empty() ? "http" : "https",
                           o.listen.substr(0, o.listen.rfind(':')), server.port(),
                           o.users_file.empty() ? "no logins" : "logins from " + o.users_file,
                           o.public_mode ? ", public aggregates" : "");
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.Stop();
  return 0;
}

// `teiten serve-user NAME`: adds or changes a user's password, read from standard input (its
// first line), never from the command line where other users could see it.
int RunServeUser(const std::string& users_file, const std::string& name) {
  if (!web::InitCrypto()) return Fail(Internal("libsodium could not be initialised"));
  if (isatty(0)) std::cerr << "password for " << name << ": " << std::flush;
  std::string password;
  std::getline(std::cin, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (Status st = web::SetUserPassword(users_file, name, password); !st.ok()) return Fail(st);
  std::cerr << fmt::format("{}: user {} set\n", users_file, name);
  return 0;
}

// `teiten serve-token LABEL`: a new API token, printed once.
int RunServeToken(const std::string& users_file, const std::string& label) {
  if (!web::InitCrypto()) return Fail(Internal("libsodium could not be initialised"));
  auto t = web::AddToken(users_file, label);
  if (!t.ok()) return Fail(t.status());
  std::cout << *t << "\n";
  std::cerr << fmt::format("{}: token {} added; it is shown only now\n", users_file, label);
  return 0;
}

}  // namespace

void AddServeCommands(Commands& cmds) {
  Common& c = cmds.common();
  struct Args {
    web::ServeOptions serve_opts;
    std::string users_file, serve_name;
  };
  auto a = std::make_shared<Args>();
  auto* serve = cmds.Add("serve", "the web dashboard and JSON API (read-only)");
  serve->add_option("--listen", a->serve_opts.listen, "HOST:PORT (port 0: any free one)")
      ->capture_default_str();
  serve->add_option("--tls-cert", a->serve_opts.tls_cert, "PEM certificate (HTTPS)");
  serve->add_option("--tls-key", a->serve_opts.tls_key, "PEM private key (HTTPS)");
  serve->add_option("--users", a->serve_opts.users_file, "users file: logins and API tokens");
  serve->add_flag("--public", a->serve_opts.public_mode,
                  "serve aggregate pages and API without a login (never per-IP data)");
  serve->add_option("--node-modules", a->serve_opts.node_modules,
                    "where npm ci installed uplot (default ./node_modules)");
  cmds.OnParsed(serve, [&c, a] { return RunServe(c, a->serve_opts); });

  auto* serve_user = cmds.app().add_subcommand(
      "serve-user", "add a user of teiten serve, or change a password (read from stdin)");
  serve_user->add_option("--users", a->users_file, "users file")->required();
  serve_user->add_option("name", a->serve_name, "user name")->required();
  cmds.OnParsed(serve_user, [a] { return RunServeUser(a->users_file, a->serve_name); });
  auto* serve_token =
      cmds.app().add_subcommand("serve-token", "add an API token for scripts (printed once)");
  serve_token->add_option("--users", a->users_file, "users file")->required();
  serve_token->add_option("label", a->serve_name, "what the token is for")->required();
  cmds.OnParsed(serve_token, [a] { return RunServeToken(a->users_file, a->serve_name); });
}

}  // namespace teiten
