#include "http/request_reader.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>
#include <stdexcept>

namespace conveyor {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Bytes asked of the socket per read.
constexpr size_t kReadChunk = 16384;
// RFC 9112 2.2 asks servers to ignore "at least one" empty line before a request line;
// a few are allowed, an endless stream of them is not.
constexpr int kMaxEmptyLines = 8;

ReadOutcome Refuse(ErrorCode code, std::string message) {
  return ReadOutcome{false, Error{code, std::move(message)}};
}

ReadOutcome RefusalFor(const error_code& ec, bool header_done) {
  if (ec == http::error::body_limit) {
    return Refuse(ErrorCode::kBodyTooLarge,
                  "the request body (with its chunk extensions) is larger than the limit");
  }
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return Refuse(ErrorCode::kHeadersTooLarge,
                  header_done ? "a chunk line or the trailer block is larger than the header limit"
                              : "the request header block is too large");
  }
  if (ec.category() == make_error_code(http::error::bad_method).category()) {
    return Refuse(ErrorCode::kBadRequest, "the HTTP request is malformed");
  }
  return ReadOutcome{};  // anything else (peer gone, timeout): close without an answer
}

asio::awaitable<error_code> ReadMore(tcp::socket& stream, beast::flat_buffer& buffer) {
  const size_t room = buffer.max_size() - buffer.size();
  if (room == 0) co_return http::error::buffer_overflow;
  auto [ec, n] =
      co_await stream.async_read_some(buffer.prepare(std::min(room, kReadChunk)), kTuple);
  buffer.commit(n);
  co_return ec;
}

// Feeds buffered bytes to the parser, reading more as needed, until the header (or the
// whole message) is parsed.
// Beast takes complete fields out of the buffer as it goes and applies its header limit to
// what is left, so the whole block is counted here.
asio::awaitable<ReadOutcome> Feed(tcp::socket& stream, beast::flat_buffer& buffer,
                                  RequestParser& parser, bool until_header,
                                  size_t max_header_bytes) {
  size_t header_bytes = 0;
  for (;;) {
    error_code ec = http::error::need_more;
    if (buffer.size() > 0) {
      try {
        const size_t used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (until_header) header_bytes += used;
      } catch (const std::length_error&) {
        co_return Refuse(ErrorCode::kHeadersTooLarge,
                         "a header or trailer field is longer than 65535 bytes");
      } catch (const std::exception&) {
        co_return Refuse(ErrorCode::kBadRequest, "the HTTP request is malformed");
      }
    }
    const size_t seen = parser.is_header_done() ? header_bytes : header_bytes + buffer.size();
    if (until_header && seen > max_header_bytes) {
      co_return RefusalFor(http::error::header_limit, false);
    }
    if (!ec) {
      if (parser.is_done() || (until_header && parser.is_header_done()))
        co_return ReadOutcome{true, std::nullopt};
      if (buffer.size() > 0) continue;
      ec = http::error::need_more;
    }
    if (ec != http::error::need_more) co_return RefusalFor(ec, parser.is_header_done());
    ec = co_await ReadMore(stream, buffer);
    if (ec == http::error::buffer_overflow) co_return RefusalFor(ec, parser.is_header_done());
    if (ec) co_return ReadOutcome{};  // cut short: no one to answer
  }
}

// Skips empty lines before the request line; false when the connection ended.
asio::awaitable<std::optional<ReadOutcome>> SkipEmptyLines(tcp::socket& stream,
                                                           beast::flat_buffer& buffer) {
  for (int skipped = 0;;) {
    auto data = static_cast<const char*>(buffer.data().data());
    if (buffer.size() >= 2 && data[0] == '\r' && data[1] == '\n') {
      if (++skipped > kMaxEmptyLines) {
        co_return Refuse(ErrorCode::kBadRequest, "too many empty lines before the request line");
      }
      buffer.consume(2);
      continue;
    }
    if (buffer.size() >= 2 || (buffer.size() == 1 && data[0] != '\r')) co_return std::nullopt;
    if (co_await ReadMore(stream, buffer)) co_return ReadOutcome{};
  }
}

// RFC 9112 6.1/6.3: only chunked is understood; it must be the last coding.
std::optional<ReadOutcome> CheckTransferEncoding(const RequestParser& parser) {
  const auto& req = parser.get();
  if (req.count(http::field::transfer_encoding) == 0) return std::nullopt;
  if (!parser.chunked()) {
    return Refuse(ErrorCode::kBadRequest, "Transfer-Encoding must end with chunked");
  }
  auto [first, last] = req.equal_range(http::field::transfer_encoding);
  for (auto field = first; field != last; ++field) {
    std::string_view value(field->value().data(), field->value().size());
    while (!value.empty()) {
      size_t comma = value.find(',');
      std::string_view coding = value.substr(0, comma);
      value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
      coding = coding.substr(0, coding.find(';'));
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
        coding.remove_prefix(1);
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
        coding.remove_suffix(1);
      if (!coding.empty() && !beast::iequals(coding, "chunked")) {
        return Refuse(ErrorCode::kNotImplemented, "only the chunked transfer coding is supported");
      }
    }
  }
  return std::nullopt;
}

}  // namespace

size_t ReadBufferLimit(const Limits& limits) { return limits.max_header_bytes + kReadChunk; }

asio::awaitable<ReadOutcome> ReadRequest(tcp::socket& stream, beast::flat_buffer& buffer,
                                         RequestParser& parser, const Limits& limits) {
  if (auto ended = co_await SkipEmptyLines(stream, buffer)) co_return *ended;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(false);
  // Chunk data and chunk extensions together stay within the body limit.
  uint64_t chunked_bytes = 0;
  auto on_chunk = [&chunked_bytes, &limits](std::uint64_t size, beast::string_view extensions,
                                            error_code& ec) {
    chunked_bytes += size + extensions.size();
    if (chunked_bytes > limits.max_body_bytes) ec = http::error::body_limit;
  };
  parser.on_chunk_header(on_chunk);

  ReadOutcome outcome =
      co_await Feed(stream, buffer, parser, /*until_header=*/true, limits.max_header_bytes);
  if (outcome.ok) {
    if (auto refused = CheckTransferEncoding(parser)) outcome = *refused;
  }
  if (outcome.ok && !parser.is_done()) {
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      auto [ec, n] = co_await http::async_write(stream, cont, kTuple);
      if (ec) outcome = ReadOutcome{};
    }
    if (outcome.ok) {
      parser.eager(true);
      outcome =
          co_await Feed(stream, buffer, parser, /*until_header=*/false, limits.max_header_bytes);
    }
  }
  // on_chunk lives in this frame: the caller never feeds the parser again.
  co_return outcome;
}

std::string_view OriginForm(std::string_view target) {
  size_t skip = 0;
  if (target.size() >= 7 && beast::iequals(target.substr(0, 7), "http://")) {
    skip = 7;
  } else if (target.size() >= 8 && beast::iequals(target.substr(0, 8), "https://")) {
    skip = 8;
  } else {
    return target;
  }
  // "http://host?q" has an empty path: "/" (its query is dropped; no client sends it).
  size_t path = target.find_first_of("/?", skip);
  if (path == std::string_view::npos || target[path] == '?') return "/";
  return target.substr(path);
}

}  // namespace conveyor
