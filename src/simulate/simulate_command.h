// `teiten simulate`: generate a scenario's traces and ground truth (issue 3).
//
//   teiten simulate --scenario tsubame-2018q3 --out /tmp/q3 --scale 0.01 --compress
//
// The command parses its own flags so that it can be wired into any front end:
//
//   if (argc > 1 && std::string_view(argv[1]) == "simulate") {
//     return teiten::simulate::RunSimulateCommand(argc - 1, argv + 1);
//   }
#pragma once

namespace teiten::simulate {

// argv[0] is the command's name (shown in --help; e.g. "simulate"), argv[1..] its flags:
//   --scenario NAME|FILE  a shipped scenario's name (data/scenarios/NAME.toml, see LoadScenario)
//                         or a path to a scenario TOML file                         (required)
//   --out DIR             output directory: DIR/<sensor>/<YYYY-MM-DD>.pcap[.zst] and
//                         DIR/ground_truth.json                                     (required)
//   --scale X             multiplies the scenario's packets, sources and event sizes (> 0)
//   --seed N              replaces the scenario's seed
//   --compress            write .pcap.zst (zstd) instead of .pcap
//   --with-sources        also DIR/<sensor>/<YYYY-MM-DD>.truth.json with every source
//   --hours-per-file N    files of N hours (1, 2, 3, 4, 6, 8, 12) instead of one per day,
//                         named <YYYY-MM-DD>T<HH>.pcap
//   --days-per-file N     files of N generated days one after the other (named by the first day;
//                         whole days only), for fewer, larger files
//   --threads N           threads generating files (0, the default: one per core); same bytes
//   --ranges-csv FILE     source ranges "first,last,CC,ASN" (as `teiten geo --ranges-csv` writes);
//                         without it a built-in stand-in is used
// Prints a one-line summary per file and per event to stdout, errors to stderr as
// "teiten simulate: <message>". Returns 0 on success, 1 on an error, CLI11's code (105/106 …)
// on bad flags, 0 for --help. Writes nothing outside --out; not thread-safe (stdout).
int RunSimulateCommand(int argc, char** argv);

}  // namespace teiten::simulate
