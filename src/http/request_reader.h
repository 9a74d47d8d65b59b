// ReadRequest: reads one HTTP/1.1 request from a connection into a Beast parser under the
// limits of Limits, feeding the parser itself so that every byte is accounted for: the
// header block (with one or more leading empty lines skipped, RFC 9112 2.2), the body,
// chunk extensions (counted against the body limit) and trailers (which must fit in the
// read buffer, whose size is bounded by the header limit). A parser exception (Beast
// throws on a field longer than 64 KiB) becomes an answer, never a crash. Runs inside the
// session coroutine on the connection's thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>

#include "common/error.h"
#include "common/limits.h"
#include "http/request_arena.h"

namespace conveyor {

// The header's fields come from the connection's RequestArena.
using RequestFields = boost::beast::http::basic_fields<ArenaAllocator<char>>;
using RequestParser =
    boost::beast::http::request_parser<boost::beast::http::string_body, ArenaAllocator<char>>;

struct ReadOutcome {
  bool ok = false;
  // Set when the request is refused with an answer (then the connection closes); unset
  // and !ok when the connection just ends (peer gone, timeout: no one to answer).
  std::optional<Error> refusal;
};

// The read buffer's bound: a header block (or a chunk line, or a trailer block) must fit.
size_t ReadBufferLimit(const Limits& limits);

// Reads a complete request (header and body). REQUIRES: buffer was made with
// ReadBufferLimit(limits) as its max size, and the caller has set the session's deadline
// (LiveSession).
boost::asio::awaitable<ReadOutcome> ReadRequest(boost::asio::ip::tcp::socket& stream,
                                                boost::beast::flat_buffer& buffer,
                                                RequestParser& parser, const Limits& limits);

// Turns an absolute-form target ("http://host:port/path?q", RFC 9112 3.2.2) into its
// origin form ("/path?q"); any other target is returned as it is.
std::string_view OriginForm(std::string_view target);

}  // namespace conveyor
