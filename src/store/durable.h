// Files written once and made durable before the manifest that names them is committed.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace teiten {

// Writes `n` bytes to `path` (created or truncated) and fsyncs it; errors name the path.
Status WriteFileDurably(const std::string& path, const void* data, size_t n);
// Fsyncs a directory, so that the names of files created in it survive a crash.
Status SyncDir(const std::string& dir);
// flock() that retries when a signal interrupts it (the store's LOCK and MERGER).
int FlockRetry(int fd, int op);

}  // namespace teiten
