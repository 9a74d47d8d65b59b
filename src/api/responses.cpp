#include "api/responses.h"

#include "common/json_writer.h"

namespace conveyor {

HttpResponse ErrorResponse(const Error& error) {
  HttpResponse response;
  response.status = HttpStatusFor(error.code);
  JsonWriter w(response.body);
  w.BeginObject().Key("error").BeginObject();
  w.Field("code", ErrorCodeName(error.code)).Field("message", std::string_view(error.message));
  w.EndObject().EndObject();
  if (response.status == 429 || response.status == 503) response.retry_after_s = 1;
  return response;
}

HttpResponse ErrorResponse(ErrorCode code, std::string message) {
  return ErrorResponse(Error{code, std::move(message)});
}

HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse MethodNotAllowed(std::string allow) {
  HttpResponse r = ErrorResponse(ErrorCode::kMethodNotAllowed,
                                 "this path does not accept that method; allowed: " + allow);
  r.allow = std::move(allow);
  return r;
}

}  // namespace conveyor
