// Url: an http or https URL cut into what a client connects to (scheme, host, port) and
// what it asks for (the target: path and query). Used by the CLI's --server, push
// delivery's endpoints and the SDK. Plain data and pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace conveyor {

struct Url {
  std::string scheme = "http";  // "http" or "https"
  std::string host = "127.0.0.1";
  std::string port = "8700";
  std::string target = "/";  // path and query, always starting with '/'

  bool tls() const { return scheme == "https"; }
  // scheme://host:port: the key of a connection pool.
  std::string origin() const;
  // The Host header: host, and :port unless it is the scheme's default.
  std::string host_header() const;
};

// http[s]://host[:port][/path][?query]; IPv6 hosts in brackets. Refused, with why: other
// schemes, user info (`user:pass@`), fragments, a missing or invalid host or port, spaces
// and control bytes, more than 2048 bytes.
std::optional<Url> ParseUrl(std::string_view text, std::string& why);

}  // namespace conveyor
