// Status and Result<T>: how expected failures travel in teiten.
//
// Functions that can fail for reasons outside the program (a missing file, a corrupt store, a
// bad config line) return `Status` or `Result<T>` instead of throwing. Exceptions never cross a
// subsystem boundary. Malformed packets are neither: they are counted anomalies (see
// capture/decoder.h).
//
//   Result<Config> cfg = LoadConfig(path);
//   if (!cfg.ok()) return cfg.status();
//   UseIt(*cfg);
//
// The message says where (file, offset, line, key) and what was wrong, for a person to read.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace teiten {

enum class StatusCode {
  kOk,
  kInvalidArgument,  // the caller or the user gave something unusable
  kNotFound,
  kAlreadyExists,
  kDataLoss,  // stored or input data is corrupt
  kIoError,
  kUnavailable,
  kInternal,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid argument: sensors.toml:12: key 'prefixes': not a CIDR prefix"
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() {
  return Status();
}
Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status DataLoss(std::string message);
Status IoError(std::string message);      // appends strerror(errno) when errno is set
Status Unavailable(std::string message);  // a peer or service did not answer, or refused
Status Internal(std::string message);

// Holds either a T or a non-OK Status. Accessing the value of a failed result is a programmer bug.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& operator*() & {
    assert(ok());
    return *value_;
  }
  const T& operator*() const& {
    assert(ok());
    return *value_;
  }
  T&& operator*() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() {
    assert(ok());
    return &*value_;
  }
  const T* operator->() const {
    assert(ok());
    return &*value_;
  }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace teiten

#define TEITEN_CONCAT_INNER(a, b) a##b
#define TEITEN_CONCAT(a, b) TEITEN_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::teiten::Status teiten_status_ = (expr);        \
    if (!teiten_status_.ok()) return teiten_status_; \
  } while (0)

// ASSIGN_OR_RETURN(auto x, MakeX()); declares x from a Result or returns its status.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL(TEITEN_CONCAT(teiten_result_, __LINE__), lhs, rexpr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                          \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(*tmp)
