#include "common/error.h"

namespace conveyor {

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return 200;
    case ErrorCode::kInvalidJson:
    case ErrorCode::kInvalidField:
    case ErrorCode::kInvalidQueueName:
    case ErrorCode::kBadRequest:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kMethodNotAllowed:
      return 405;
    case ErrorCode::kLeaseMismatch:
    case ErrorCode::kInvalidState:
      return 409;
    case ErrorCode::kBodyTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMediaType:
      return 415;
    case ErrorCode::kHeadersTooLarge:
      return 431;
    case ErrorCode::kTooManyRequests:
      return 429;
    case ErrorCode::kOverloaded:
    case ErrorCode::kStorageUnavailable:
    case ErrorCode::kStorageTimeout:
      return 503;
    case ErrorCode::kNotImplemented:
      return 501;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kInvalidJson:
      return "invalid_json";
    case ErrorCode::kInvalidField:
      return "invalid_field";
    case ErrorCode::kInvalidQueueName:
      return "invalid_queue_name";
    case ErrorCode::kBadRequest:
      return "bad_request";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kMethodNotAllowed:
      return "method_not_allowed";
    case ErrorCode::kLeaseMismatch:
      return "lease_mismatch";
    case ErrorCode::kInvalidState:
      return "invalid_state";
    case ErrorCode::kBodyTooLarge:
      return "body_too_large";
    case ErrorCode::kUnsupportedMediaType:
      return "unsupported_media_type";
    case ErrorCode::kHeadersTooLarge:
      return "headers_too_large";
    case ErrorCode::kTooManyRequests:
      return "too_many_requests";
    case ErrorCode::kOverloaded:
      return "overloaded";
    case ErrorCode::kStorageUnavailable:
      return "storage_unavailable";
    case ErrorCode::kStorageTimeout:
      return "storage_timeout";
    case ErrorCode::kNotImplemented:
      return "not_implemented";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace conveyor
