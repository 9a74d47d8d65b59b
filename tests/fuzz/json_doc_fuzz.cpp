// libFuzzer target: JsonDoc, the one-pass request-body parser, against Boost.JSON plus the
// duplicate-key walker it replaced. Both must accept and refuse the same texts (strict
// RFC 8259, the same depth limit, repeated keys refused), and for an accepted object every
// member's raw() must be the bytes the raw walker finds. Any disagreement aborts. Numbers
// with an exponent of 10 or more digits are left out of the comparison: JsonDoc refuses
// exponents past 999,999,999, Boost.JSON those past about 2^31.
#include <boost/json/parse.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/json_doc.h"
#include "common/json_raw.h"

namespace {

bool HasLongExponent(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != 'e' && text[i] != 'E') continue;
    size_t j = i + 1;
    if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
    size_t digits = 0;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j, ++digits;
    if (digits >= 10) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace conveyor;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (HasLongExponent(text)) return 0;
  constexpr size_t kDepth = 16;
  boost::json::parse_options options;
  options.max_depth = kDepth;
  boost::system::error_code ec;
  boost::json::parse(text, ec, {}, options);
  const bool boost_ok = !ec && !HasDuplicateJsonKeys(text);
  JsonDoc doc;
  const bool ours = doc.Parse(text, kDepth);
  if (ours != boost_ok) std::abort();
  if (!ours) return 0;
  JsonValue root = doc.root();
  if (root.raw() != TrimJson(text)) std::abort();
  if (root.is_object()) {
    size_t members = 0;
    for (JsonValue m = root.first(); m; m = m.next(), ++members) {
      if (FindJsonMember(root.raw(), m.key()) != m.raw()) std::abort();
      if (!root.Find(m.key())) std::abort();
    }
    if (members != root.size()) std::abort();
  }
  if (root.is_array()) {
    size_t elements = 0;
    for (JsonValue e = root.first(); e; e = e.next()) ++elements;
    if (elements != root.size()) std::abort();
  }
  return 0;
}
