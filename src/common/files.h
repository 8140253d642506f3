// Reading a small file whole (secrets, recipient lists, prefix lists, TLS keys).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace teiten {

// The file's bytes; NotFound naming the path and the OS reason when it cannot be read.
Result<std::string> ReadWholeFile(const std::string& path);
// Writes `body` to `path` + ".tmp", fsyncs it and renames it over `path`, so that a reader (or a
// mailer picking files up) never sees half a file. On failure the temporary file is removed and
// the error names the path. The file is created with `mode` (before the umask).
Status WriteFileAtomically(const std::string& path, std::string_view body, int mode = 0644);

}  // namespace teiten
