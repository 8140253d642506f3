// The identities of the captures folded into one input (Store::Transaction::FoldInputs), kept
// beside the manifest instead of in it: idx/NNNNNNNN.tids, written once, named by the input's
// `folded_file`. A store that folds a capture an hour per sensor for years would otherwise carry
// every capture's two hashes in the manifest that each commit parses and writes again — the one
// part of a commit's cost that grew with the store (1.5 MB of a 1.8 MB manifest after 20,000
// captures). Looking an identity up reads a few chunks of each file: a binary search over the
// sorted 64-bit hashes of the identities, then the identity itself compared. Layout in
// docs/STORE_FORMAT.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/chunk_sums.h"

namespace teiten {

// (content hash, file-byte hash) of each folded capture, in fold order; a file hash may be "".
using CaptureIdentities = std::vector<std::pair<std::string, std::string>>;

// Writes the identities to `path` (a new file) and fsyncs it.
Status WriteIdentities(const std::string& path, const CaptureIdentities& ids);

class IdentityFile {
 public:
  static Result<std::unique_ptr<IdentityFile>> Open(const std::string& path);
  ~IdentityFile();
  IdentityFile(const IdentityFile&) = delete;
  IdentityFile& operator=(const IdentityFile&) = delete;

  // Whether `h` is one of the captures' content or file hashes (never ""). Reads only the
  // chunks it needs, each verified first.
  Result<bool> Holds(const std::string& h) const;
  // Every capture's identities, in fold order (for folding again, and `teiten verify`).
  Result<CaptureIdentities> All() const;
  uint64_t captures() const { return n_; }
  // Verifies the whole file (footer checksum and every chunk).
  Status Verify() const;

 private:
  IdentityFile() = default;
  Status Record(uint64_t i, std::string* hash, std::string* file_hash) const;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  ChunkSums sums_;
  uint64_t n_ = 0, keys_ = 0, records_size_ = 0;
  const uint8_t* key_at_ = nullptr;  // keys_ × (u64 XXH3-64 of the identity, u64 capture)
  const uint8_t* off_at_ = nullptr;  // (n_ + 1) × u64 record offsets
  const uint8_t* rec_at_ = nullptr;  // records: varint length, hash, varint length, file hash
};

}  // namespace teiten
