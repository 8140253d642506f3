// teiten-geo-build: converts the @ip-location-db ASN CSV tables into an MMDB file that reads like
// GeoLite2-ASN. Run by the setup script once, after npm has installed the data:
//
//   teiten-geo-build --asn-v4 asn-ipv4.csv --asn-v6 asn-ipv6.csv --out asn.mmdb
//       --description "ASN from @ip-location-db/asn 2.3.2026061719" --epoch 1781654400
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

#include "enrich/writer/asn_csv.h"

int main(int argc, char** argv) {
  CLI::App app{"Build teiten's ASN database (MaxMind DB format) from the ip-location-db CSV files"};
  std::string asn_v4;
  std::string asn_v6;
  std::string out;
  std::string description;
  uint64_t epoch = static_cast<uint64_t>(std::time(nullptr));
  app.add_option("--asn-v4", asn_v4, "IPv4 ASN CSV (asn-ipv4.csv)")->check(CLI::ExistingFile);
  app.add_option("--asn-v6", asn_v6, "IPv6 ASN CSV (asn-ipv6.csv)")->check(CLI::ExistingFile);
  app.add_option("--out", out, "MMDB file to write (replaced atomically)")->required();
  app.add_option("--description", description, "description stored in the metadata")->required();
  app.add_option("--epoch", epoch, "build time in seconds since the Unix epoch (default: now)");
  CLI11_PARSE(app, argc, argv);
  if (asn_v4.empty() && asn_v6.empty()) {
    std::fprintf(stderr, "teiten-geo-build: give --asn-v4, --asn-v6 or both\n");
    return 2;
  }

  teiten::MmdbWriteStats stats;
  teiten::Status status = teiten::BuildAsnMmdb(asn_v4, asn_v6, out, description, epoch, &stats);
  if (!status.ok()) {
    std::fprintf(stderr, "teiten-geo-build: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("%s: %u nodes, %u-bit records, %u distinct records, %llu bytes\n", out.c_str(),
              stats.node_count, static_cast<unsigned>(stats.record_size), stats.data_records,
              static_cast<unsigned long long>(stats.file_bytes));
  return 0;
}
