// Domain error codes shared by every layer, and the one table that maps them to HTTP
// status and the snake_case code of the error JSON. The engine returns these values;
// only the HTTP layer turns them into responses. Stateless; usable from any thread.
#pragma once

#include <string>
#include <string_view>

namespace conveyor {

enum class ErrorCode {
  kOk = 0,
  kInvalidJson,           // 400: body is not valid JSON (or has duplicate keys, too deep)
  kInvalidField,          // 400: a field has the wrong type or is out of range
  kInvalidQueueName,      // 400
  kBadRequest,            // 400: anything else malformed (e.g. the HTTP request itself)
  kNotFound,              // 404: no such route or task
  kMethodNotAllowed,      // 405 (+ Allow)
  kLeaseMismatch,         // 409: token is not the current lease's, or the lease expired
  kInvalidState,          // 409: the task is not in a state that allows the call
  kBodyTooLarge,          // 413
  kUnsupportedMediaType,  // 415
  kHeadersTooLarge,       // 431
  kTooManyRequests,       // 429 (+ Retry-After)
  kOverloaded,            // 503 (+ Retry-After)
  kStorageUnavailable,    // 503 (+ Retry-After)
  kStorageTimeout,        // 503 (+ Retry-After): durability not confirmed in time; outcome unknown
  kNotImplemented,        // 501: e.g. a transfer coding other than chunked
  kInternal,              // 500
};

int HttpStatusFor(ErrorCode code);
std::string_view ErrorCodeName(ErrorCode code);

// An error with a human sentence, as carried between layers.
struct Error {
  ErrorCode code = ErrorCode::kOk;
  std::string message;

  bool ok() const { return code == ErrorCode::kOk; }
};

}  // namespace conveyor
