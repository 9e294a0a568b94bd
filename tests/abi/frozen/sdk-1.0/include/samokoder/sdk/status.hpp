// Status and Result<T>: the one error style across the Samokoder SDK and kernel.
//
// Every fallible call between the kernel and a plugin returns a Status (no value) or a Result<T>
// (a value or a Status); exceptions never cross the plugin boundary. A Status is a code from a small,
// closed set plus a human message that names what was expected and what was found.
//
// Ownership: both are plain values that own their message and value; copy and move freely.
// Thread-safety: const methods may be called concurrently; mutation needs external synchronisation.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace samokoder::sdk {

// The numeric values are part of the ABI: never renumber, only append.
enum class StatusCode : std::uint32_t {
  kOk = 0,
  kInvalidArgument = 1,     // the caller sent something malformed; retrying the same call fails again
  kNotFound = 2,            // the thing does not exist (or the caller may not know that it does)
  kAlreadyExists = 3,       // a create collided with an existing key
  kPermissionDenied = 4,    // authenticated, but not allowed
  kUnauthenticated = 5,     // no valid credentials
  kFailedPrecondition = 6,  // the system is not in a state that allows the call (e.g. wrong version)
  kAborted = 7,             // a concurrency conflict; the whole operation may be retried
  kResourceExhausted = 8,   // a quota, rate limit or size limit was hit
  kUnavailable = 9,         // a dependency is down; retrying later may succeed
  kDeadlineExceeded = 10,   // the call ran out of time
  kCancelled = 11,          // the caller gave up
  kUnimplemented = 12,      // this plugin or kernel does not offer the call
  kInternal = 13,           // a bug or an invariant broke; details are in the log
  kDataLoss = 14,           // stored data is corrupt or missing
};

// Stable lowercase name of a code, e.g. "not_found"; used in logs, metrics and problem+json types.
constexpr std::string_view status_code_name(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kPermissionDenied: return "permission_denied";
    case StatusCode::kUnauthenticated: return "unauthenticated";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kAborted: return "aborted";
    case StatusCode::kResourceExhausted: return "resource_exhausted";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kDeadlineExceeded: return "deadline_exceeded";
    case StatusCode::kCancelled: return "cancelled";
    case StatusCode::kUnimplemented: return "unimplemented";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kDataLoss: return "data_loss";
  }
  return "unknown";
}

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status permission_denied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
  static Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status deadline_exceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
  static Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }

  bool ok() const noexcept { return code_ == StatusCode::kOk; }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "not_found: project 42 does not exist"
  std::string to_string() const {
    if (ok()) return "ok";
    std::string out(status_code_name(code_));
    out += ": ";
    out += message_;
    return out;
  }

  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Thrown only by Result<T>::value() on a failed result: a programming error on the caller's side.
// The kernel catches it at the plugin boundary like any other exception.
class BadResultAccess : public std::logic_error {
 public:
  explicit BadResultAccess(const Status& status)
      : std::logic_error("value() called on a failed Result: " + status.to_string()) {}
};

template <typename T>
class [[nodiscard]] Result {
 public:
  // NOLINTNEXTLINE(google-explicit-constructor): a value converts implicitly, as in `return value;`.
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  // NOLINTNEXTLINE(google-explicit-constructor): so is a failed Status, as in `return status;`.
  Result(Status status) : state_(std::in_place_index<1>, std::move(status)) {
    if (std::get<1>(state_).ok()) {
      std::get<1>(state_) = Status::internal("Result constructed from an OK status without a value");
    }
  }

  bool ok() const noexcept { return state_.index() == 0; }

  // OK when a value is held, else the failure.
  Status status() const { return ok() ? Status{} : std::get<1>(state_); }

  // REQUIRES: ok(); throws BadResultAccess otherwise.
  T& value() & {
    check();
    return std::get<0>(state_);
  }
  const T& value() const& {
    check();
    return std::get<0>(state_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(state_));
  }

  T value_or(T fallback) const& { return ok() ? std::get<0>(state_) : std::move(fallback); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void check() const {
    if (!ok()) throw BadResultAccess(std::get<1>(state_));
  }

  std::variant<T, Status> state_;
};

}  // namespace samokoder::sdk

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define SAMOKODER_RETURN_IF_ERROR(expr)               \
  do {                                                \
    ::samokoder::sdk::Status samokoder_status_ = (expr); \
    if (!samokoder_status_.ok()) return samokoder_status_; \
  } while (false)
