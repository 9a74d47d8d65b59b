// Raw JSON views: walks JSON text that a strict parser has already accepted and hands out
// the exact bytes of members and elements. The API layer uses it to keep a task's payload
// as the client's bytes (no re-serialization, numbers keep their spelling) and to refuse
// duplicate keys, which Boost.JSON 1.81 silently merges. Pure functions; any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace conveyor {

// Skips whitespace and one complete JSON value starting at text[pos]; returns the index just
// past it. REQUIRES: text is valid JSON.
size_t SkipJsonValue(std::string_view text, size_t pos);

// Calls visit(raw_key_without_quotes, raw_value) for each member of the object `object`
// (the raw text of one JSON object). Stops early when visit returns false.
void ForEachJsonMember(std::string_view object,
                       const std::function<bool(std::string_view, std::string_view)>& visit);

// Calls visit(raw_element) for each element of the array `array`.
void ForEachJsonElement(std::string_view array, const std::function<bool(std::string_view)>& visit);

// Returns the raw text of member `key` of `object`, or an empty view when absent. Keys
// are compared after unescaping ("p\u0061yload" is "payload"), as a JSON parser reads them.
std::string_view FindJsonMember(std::string_view object, std::string_view key);

// True when any object anywhere in `text` repeats a key, compared after unescaping, so
// that "pr\u0069ority" repeats "priority" (Boost.JSON would keep one of them silently).
bool HasDuplicateJsonKeys(std::string_view text);

// The text of a JSON string's body (between its quotes) with escapes resolved, as UTF-8.
// REQUIRES: valid JSON string text.
std::string UnescapeJsonString(std::string_view raw);

// Trims JSON whitespace from both ends.
std::string_view TrimJson(std::string_view text);

}  // namespace conveyor
