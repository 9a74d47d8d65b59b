// ResponseHead: formats an HTTP/1.x response's status line and header fields into a
// string the session keeps for the connection (so a response allocates nothing once the
// string has grown), to be written with the body in one gathered write. Replaces Beast's
// response object and serializer on the answer path, which cost ~16,000 instructions a
// response (callgrind, bench/RESULTS.md). Used by RunSession, on the connection's thread.
#pragma once

#include <string>
#include <string_view>

#include "http/message.h"

namespace conveyor {

// The reason phrase of a status code ("Created" for 201), or "Unknown" for a code HTTP
// does not name.
std::string_view ReasonPhrase(int status);

// Replaces `head` with the status line and fields of `answer`: Server, Content-Type,
// Allow and Retry-After when set, Connection when it differs from the version's default
// (close on 1.1, keep-alive on 1.0), Content-Length of the body, then the blank line.
// `version` is 10 or 11, as Beast spells it.
void FormatResponseHead(const HttpResponse& answer, unsigned version, bool keep_alive,
                        std::string& head);

}  // namespace conveyor
