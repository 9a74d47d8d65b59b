// Building HttpResponses: success bodies and the SPEC.md error JSON, with Retry-After for
// 429/503. Stateless helpers for the API handlers.
#pragma once

#include <string>

#include "common/error.h"
#include "http/message.h"

namespace conveyor {

HttpResponse ErrorResponse(const Error& error);
HttpResponse ErrorResponse(ErrorCode code, std::string message);
HttpResponse JsonResponse(int status, std::string body);
// 405 naming the methods the path accepts (and the Allow header).
HttpResponse MethodNotAllowed(std::string allow);

}  // namespace conveyor
