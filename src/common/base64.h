// Base64 (RFC 4648, standard alphabet, padded): the HTTP API's encoding of payloads that
// are not UTF-8, push signatures and their `whsec_` secrets. Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace conveyor {

std::string Base64(std::string_view bytes);
// Strict: padded to a multiple of 4, standard alphabet only; nullopt otherwise.
std::optional<std::string> FromBase64(std::string_view text);

}  // namespace conveyor
