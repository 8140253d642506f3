// MmdbWriter: builds a MaxMind DB (.mmdb, binary format 2.0) file that libmaxminddb and every
// other MaxMind DB reader can open.
//
// teiten reads geo and ASN data through libmaxminddb only. Some free data (the ASN tables of
// @ip-location-db) comes as CSV, so the setup converts it once with this writer; nothing here runs
// at lookup time.
//
//   MmdbWriter writer({.database_type = "GeoLite2-ASN", .description = "ASN from ...",
//                      .build_epoch = 1750000000});
//   RETURN_IF_ERROR(writer.InsertRange(*IpAddr::Parse("1.0.0.0"), *IpAddr::Parse("1.0.0.255"),
//                                      {{"autonomous_system_number", uint32_t{13335}}}));
//   ASSIGN_OR_RETURN(MmdbWriteStats stats, writer.Write("/var/lib/teiten/asn.mmdb"));
//
// The tree is always an IPv6 tree (metadata ip_version 6). IPv4 networks live at ::/96, where
// libmaxminddb looks for IPv4 addresses, and ::ffff:0:0/96 is an alias of that subtree so that a
// lookup of an IPv4-mapped IPv6 address (the form teiten's IpAddr holds) finds the same data, as
// in MaxMind's own databases. IPv6 ranges may therefore not touch ::/96 or ::ffff:0:0/96.
//
// Not thread-safe. Memory is about 8 bytes per tree node plus the distinct data records; the two
// ip-location-db ASN tables (~500k ranges) need well under 1 GB.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/ip.h"
#include "common/status.h"

namespace teiten {

// One field value of a data record: a UTF-8 string (MMDB utf8_string) or an MMDB uint32.
using MmdbValue = std::variant<std::string, uint32_t>;

// A data record: one flat MMDB map. Keys are unique and kept sorted, so two records with the same
// fields are the same record whatever order they were built in.
using MmdbRecord = std::map<std::string, MmdbValue>;

// What goes into the file's metadata section besides the tree shape.
struct MmdbMetadata {
  std::string database_type;  // readers pick a record layout by it, e.g. "GeoLite2-ASN"
  std::string description;    // written as {"en": description}
  std::vector<std::string> languages = {"en"};
  uint64_t build_epoch = 0;  // seconds since the Unix epoch
};

// What Write produced, for logs and for the setup script to print.
struct MmdbWriteStats {
  uint32_t node_count = 0;
  uint16_t record_size = 0;   // bits per record: 24, 28 or 32
  uint32_t data_records = 0;  // distinct records written to the data section
  uint64_t data_bytes = 0;
  uint64_t file_bytes = 0;
};

class MmdbWriter {
 public:
  // The record size is the smallest of 24, 28 and 32 bits that can address the whole file and is
  // at least `min_record_size` (raise it only to exercise the wider layouts in tests).
  explicit MmdbWriter(MmdbMetadata metadata, uint16_t min_record_size = 24);

  // Maps every address in the inclusive range [first, last] to `record`. The range is split into
  // CIDR blocks; it need not be aligned. Both ends must be of the same family (IpAddr::is_v4),
  // first <= last, string values valid UTF-8. Where ranges overlap, the one inserted last wins for
  // the addresses they share. Identical records are stored once however many ranges use them.
  // On error nothing has been inserted.
  Status InsertRange(const IpAddr& first, const IpAddr& last, const MmdbRecord& record);

  // Same as InsertRange for the addresses of one CIDR prefix.
  Status InsertPrefix(const Prefix& prefix, const MmdbRecord& record);

  // Writes the database to `path` atomically: a temporary file beside it is written, synced and
  // renamed over `path`, so readers see the old file or the new one, never a partial one. Adjacent
  // networks with identical records are merged first (lookups then report the wider network).
  // May be called more than once; inserting after Write is allowed.
  Result<MmdbWriteStats> Write(const std::string& path);

  // Number of distinct data records inserted so far (including any later fully overwritten).
  size_t distinct_records() const { return records_.size(); }
  // Number of CIDR blocks inserted so far.
  uint64_t blocks_inserted() const { return blocks_inserted_; }

 private:
  struct Node {
    uint32_t child[2];
  };

  Result<uint32_t> Intern(const MmdbRecord& record);
  void InsertBlock(unsigned __int128 address, int length, bool v4, uint32_t leaf);
  uint32_t NewNode(uint32_t left, uint32_t right);
  uint32_t Merge(uint32_t ref);

  MmdbMetadata metadata_;
  uint16_t min_record_size_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
  uint32_t ipv4_root_ = 0;   // the node at ::/96
  std::vector<MmdbRecord> records_;
  std::unordered_map<std::string, uint32_t> record_ids_;  // plain encoding -> index in records_
  uint64_t blocks_inserted_ = 0;
};

}  // namespace teiten
