#include "common/url.h"

#include <gtest/gtest.h>

namespace conveyor {
namespace {

Url Parsed(std::string_view text) {
  std::string why;
  std::optional<Url> url = ParseUrl(text, why);
  EXPECT_TRUE(url.has_value()) << text << ": " << why;
  return url.value_or(Url{});
}

std::string Refused(std::string_view text) {
  std::string why;
  EXPECT_FALSE(ParseUrl(text, why).has_value()) << text;
  return why;
}

TEST(UrlTest, SplitsSchemeHostPortAndTarget) {
  Url u = Parsed("https://hooks.example.com/orders/new?x=1");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_TRUE(u.tls());
  EXPECT_EQ(u.host, "hooks.example.com");
  EXPECT_EQ(u.port, "443");
  EXPECT_EQ(u.target, "/orders/new?x=1");
  EXPECT_EQ(u.host_header(), "hooks.example.com");
  EXPECT_EQ(u.origin(), "https://hooks.example.com");

  u = Parsed("http://127.0.0.1:8700");
  EXPECT_EQ(u.port, "8700");
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(u.host_header(), "127.0.0.1:8700");
  EXPECT_EQ(Parsed("http://h?q=1").target, "/?q=1");
  EXPECT_EQ(Parsed("http://h:80/").host_header(), "h");

  u = Parsed("http://[::1]:9000/p");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, "9000");
  EXPECT_EQ(u.host_header(), "[::1]:9000");
}

TEST(UrlTest, RefusesWhatAClientCannotOrShouldNotUse) {
  EXPECT_NE(Refused("ftp://h/").find("http://"), std::string::npos);
  Refused("h:80");
  Refused("http://");
  Refused("http://:80/");
  Refused("http://h:/");
  Refused("http://h:0/");
  Refused("http://h:65536/");
  Refused("http://h:8x/");
  EXPECT_NE(Refused("http://user:pw@h/").find("user info"), std::string::npos);
  Refused("http://h/#frag");
  Refused("http://h/a b");
  Refused(std::string("http://h/\0", 10));
  Refused("http://[::1/");
  Refused("http://[abc]/");
  Refused("http://h%41/");
  Refused("http://h/" + std::string(3000, 'a'));
}

}  // namespace
}  // namespace conveyor
