#include "enrich/writer/asn_csv.h"

#include <cerrno>
#include <fstream>
#include <utility>
#include <vector>

namespace teiten {
namespace {

constexpr const char* kFieldNames[] = {"ip_range_start", "ip_range_end", "autonomous_system_number",
                                       "autonomous_system_organization"};
constexpr size_t kFieldCount = 4;

// Real lines are under 200 bytes; a far longer one means the file is not an ASN table.
constexpr size_t kMaxLineLength = size_t{64} * 1024;

std::string FieldLabel(size_t index) {
  return "field " + std::to_string(index + 1) + " (" + kFieldNames[index] + ")";
}

// Splits one RFC 4180 line. Fields may be quoted; a quote inside a quoted field is doubled.
Status SplitCsv(std::string_view line, std::vector<std::string>* fields) {
  fields->clear();
  size_t pos = 0;
  while (true) {
    std::string field;
    size_t number = fields->size() + 1;
    if (pos < line.size() && line[pos] == '"') {
      ++pos;
      while (true) {
        if (pos >= line.size()) {
          return InvalidArgument("field " + std::to_string(number) + ": quote is never closed");
        }
        if (line[pos] == '"') {
          if (pos + 1 < line.size() && line[pos + 1] == '"') {
            field.push_back('"');
            pos += 2;
            continue;
          }
          ++pos;
          break;
        }
        field.push_back(line[pos++]);
      }
      if (pos < line.size() && line[pos] != ',') {
        return InvalidArgument("field " + std::to_string(number) +
                               ": text after the closing quote");
      }
    } else {
      size_t end = line.find(',', pos);
      if (end == std::string_view::npos) end = line.size();
      field.assign(line.substr(pos, end - pos));
      if (field.find('"') != std::string::npos) {
        return InvalidArgument("field " + std::to_string(number) +
                               ": quote inside an unquoted field");
      }
      pos = end;
    }
    fields->push_back(std::move(field));
    if (pos >= line.size()) return OkStatus();
    ++pos;  // the comma
  }
}

Result<IpAddr> ParseEnd(const std::string& text, size_t index, IpFamily family) {
  auto addr = IpAddr::Parse(text);
  if (!addr) return InvalidArgument(FieldLabel(index) + ": '" + text + "' is not an IP address");
  bool want_v4 = family == IpFamily::kIpv4;
  if (addr->is_v4() != want_v4) {
    return InvalidArgument(FieldLabel(index) + ": '" + text + "' is not an " +
                           (want_v4 ? "IPv4" : "IPv6") + " address");
  }
  return *addr;
}

Result<uint32_t> ParseAsn(const std::string& text) {
  uint64_t value = 0;
  bool ok = !text.empty() && text.size() <= 10;
  for (char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok || value > 0xFFFFFFFFu) {
    return InvalidArgument(FieldLabel(2) + ": '" + text + "' is not a number from 0 to 4294967295");
  }
  return static_cast<uint32_t>(value);
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

}  // namespace

Result<AsnCsvRow> ParseAsnCsvLine(std::string_view line, IpFamily family) {
  if (line.size() > kMaxLineLength) {
    return InvalidArgument("line longer than " + std::to_string(kMaxLineLength) + " bytes");
  }
  std::vector<std::string> fields;
  RETURN_IF_ERROR(SplitCsv(line, &fields));
  if (fields.size() != kFieldCount) {
    return InvalidArgument("expected 4 fields (start,end,asn,organization), found " +
                           std::to_string(fields.size()));
  }
  AsnCsvRow row;
  ASSIGN_OR_RETURN(row.first, ParseEnd(fields[0], 0, family));
  ASSIGN_OR_RETURN(row.last, ParseEnd(fields[1], 1, family));
  if (row.last < row.first) {
    return InvalidArgument("range " + fields[0] + " - " + fields[1] + " ends before it starts");
  }
  ASSIGN_OR_RETURN(row.asn, ParseAsn(fields[2]));
  row.organization = std::move(fields[3]);
  return row;
}

Result<uint64_t> AddAsnCsv(const std::string& path, IpFamily family, MmdbWriter* writer) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return NotFound(path + ": no such file");
    return IoError("cannot open " + path);
  }
  std::string line;
  uint64_t line_number = 0;
  uint64_t inserted = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (IsBlank(line)) continue;
    if (line_number == 1 && line.starts_with("ip_range_start")) continue;
    auto where = [&] { return path + ":" + std::to_string(line_number) + ": "; };
    auto row = ParseAsnCsvLine(line, family);
    if (!row.ok()) return Status(row.status().code(), where() + row.status().message());
    MmdbRecord record{{kAsnNumberKey, row->asn}};
    if (!row->organization.empty()) record.emplace(kAsnOrganizationKey, row->organization);
    Status s = writer->InsertRange(row->first, row->last, record);
    if (!s.ok()) return Status(s.code(), where() + s.message());
    ++inserted;
  }
  if (in.bad()) {
    errno = 0;
    return IoError("cannot read " + path + " after line " + std::to_string(line_number));
  }
  return inserted;
}

Status BuildAsnMmdb(const std::string& ipv4_csv, const std::string& ipv6_csv,
                    const std::string& out_path, const std::string& description,
                    uint64_t build_epoch, MmdbWriteStats* stats) {
  if (ipv4_csv.empty() && ipv6_csv.empty()) {
    return InvalidArgument("no ASN CSV given: need an IPv4 or IPv6 file, or both");
  }
  MmdbWriter writer({.database_type = kAsnDatabaseType,
                     .description = description,
                     .languages = {"en"},
                     .build_epoch = build_epoch});
  if (!ipv4_csv.empty()) RETURN_IF_ERROR(AddAsnCsv(ipv4_csv, IpFamily::kIpv4, &writer).status());
  if (!ipv6_csv.empty()) RETURN_IF_ERROR(AddAsnCsv(ipv6_csv, IpFamily::kIpv6, &writer).status());
  ASSIGN_OR_RETURN(MmdbWriteStats written, writer.Write(out_path));
  if (stats != nullptr) *stats = written;
  return OkStatus();
}

}  // namespace teiten
