// Spool: the sensor's durable queue of encoded batches, in one directory.
//
//   ASSIGN_OR_RETURN(auto spool, Spool::Open({"/var/spool/teiten", 1ull << 30, "tokyo-1"}));
//   ASSIGN_OR_RETURN(auto id, spool->Append(std::move(batch)));   // nullopt: dropped, counted
//   for (uint64_t id : spool->Pending()) { send(spool->Read(id)); spool->Ack(id); }
//
// Guarantees:
// - Append returns only after the batch file and its directory entry are on disk (fsync of the
//   file, rename from a .tmp name, fsync of the directory), so an acked-by-nobody batch survives
//   kill -9 and power loss; a .tmp left by a kill is removed by the next Open.
// - Batch ids are 1, 2, 3, … per spool and never repeat, across restarts and kill -9: the next
//   id is kept in the state file, and Open also takes it past every batch file present. A spool
//   made anew (its directory wiped) draws a new random stream id, carried by every batch, so that
//   (sensor, stream, batch id) never names two different batches.
// - Losses are never silent: when a batch would take the spool over its byte budget it is dropped
//   (drop_newest) and its rows are counted under "spool_full", its own loss counts kept; the
//   counts wait (durably, in the state file) and travel in the lost map of the next batch
//   appended, exactly once — a kill between writing that batch and updating the state is
//   recognised at Open because the batch with the state's next id exists.
// - A batch that cannot be written (disk full, I/O error) is lost and counted the same way,
//   under "spool_write_failed"; Append returns the error so the caller can log it.
// - A spooled file that does not decode at Open (disk corruption) is renamed *.corrupt, logged in
//   the Status list corrupt(), and not sent.
// Not guaranteed: thread safety — one thread appends and acks (the sensor serialises them).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "transport/wire.h"

namespace teiten {

class Spool {
 public:
  struct Options {
    std::string dir;
    uint64_t budget_bytes = 1ull << 30;
    std::string sensor_id;  // stamped on every batch appended
  };

  // Creates the directory if needed, removes partial files and recovers the state.
  static Result<std::unique_ptr<Spool>> Open(const Options& options);

  // Gives `b` the next batch id, the sensor id and the pending loss counts, and writes it
  // durably. Returns the id, or nullopt when the budget made it drop the batch (counted).
  Result<std::optional<uint64_t>> Append(WireBatch b);
  // Ids of the batches on disk, oldest first.
  std::vector<uint64_t> Pending() const;
  Result<std::string> Read(uint64_t id) const;
  // The collector has committed `id`: the file is removed (and the directory synced).
  Status Ack(uint64_t id);

  uint64_t bytes() const { return bytes_; }
  uint64_t next_id() const { return next_id_; }
  uint64_t stream() const { return stream_; }
  // Losses waiting for the next batch, and everything this process has dropped by reason.
  const std::map<std::string, uint64_t>& pending_lost() const { return pending_lost_; }
  const std::map<std::string, uint64_t>& dropped_total() const { return dropped_total_; }
  const std::vector<std::string>& corrupt() const { return corrupt_; }

 private:
  explicit Spool(Options o) : options_(std::move(o)) {}
  std::string PathOf(uint64_t id) const;
  Status WriteState();
  Status Recover();

  Options options_;
  uint64_t next_id_ = 1;
  uint64_t stream_ = 0;
  uint64_t bytes_ = 0;
  std::map<uint64_t, uint64_t> files_;  // id -> size
  std::map<std::string, uint64_t> pending_lost_;
  std::map<std::string, uint64_t> dropped_total_;
  std::vector<std::string> corrupt_;
};

}  // namespace teiten
