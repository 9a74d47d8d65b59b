#include "common/url.h"

#include <charconv>

namespace conveyor {
namespace {

constexpr size_t kMaxUrlBytes = 2048;

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool ValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc() && end == port.data() + port.size() && value >= 1 && value <= 65535;
}

// Splits "host[:port]" or "[v6][:port]" into out.host and out.port.
bool SplitAuthority(std::string_view authority, Url& out, std::string& why) {
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "the URL's IPv6 host has no closing ']'";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      why = "the URL has bytes after its IPv6 host";
      return false;
    }
    if (!rest.empty()) port = rest.substr(1);
    for (char c : host) {
      if (!(IsHostChar(c) || c == ':')) host = {};
    }
    if (host.empty() || host.find(':') == std::string_view::npos) {
      why = "the URL's IPv6 host is not an IPv6 address";
      return false;
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) {
        why = "the URL's port is empty";
        return false;
      }
    }
    if (host.empty()) {
      why = "the URL has no host";
      return false;
    }
    for (char c : host) {
      if (!IsHostChar(c)) {
        why = "the URL's host may hold only letters, digits, '-', '.' and '_'";
        return false;
      }
    }
  }
  if (!port.empty() && !ValidPort(port)) {
    why = "the URL's port must be a number from 1 to 65535";
    return false;
  }
  out.host = std::string(host);
  out.port = port.empty() ? (out.tls() ? "443" : "80") : std::string(port);
  return true;
}

}  // namespace

std::string Url::origin() const { return scheme + "://" + host_header(); }

std::string Url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const bool default_port = (tls() && port == "443") || (!tls() && port == "80");
  if (!default_port) h += ":" + port;
  return h;
}

std::optional<Url> ParseUrl(std::string_view text, std::string& why) {
  if (text.size() > kMaxUrlBytes) {
    why = "the URL is longer than 2048 bytes";
    return std::nullopt;
  }
  for (unsigned char c : text) {
    if (c <= ' ' || c == 0x7f) {
      why = "the URL holds a space or a control character";
      return std::nullopt;
    }
  }
  Url out;
  size_t sep = text.find("://");
  std::string_view scheme = sep == std::string_view::npos ? "" : text.substr(0, sep);
  if (scheme == "http" || scheme == "https") {
    out.scheme = std::string(scheme);
  } else {
    why = "the URL must start with http:// or https://";
    return std::nullopt;
  }
  std::string_view rest = text.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) {
    why = "the URL may not have a fragment ('#')";
    return std::nullopt;
  }
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) {
    why = "the URL may not hold user info ('user@'); send credentials as headers";
    return std::nullopt;
  }
  if (!SplitAuthority(authority, out, why)) return std::nullopt;
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  out.target.clear();
  if (target.empty() || target.front() == '?') out.target.push_back('/');
  out.target.append(target);
  return out;
}

}  // namespace conveyor
