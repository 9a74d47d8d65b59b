// Push signatures as the Standard Webhooks specification defines them: the key of a
// queue's `secret`, and the `webhook-signature` value "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>". Used by the push dispatcher (signing) and the API (checking a
// secret before it is stored). Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace conveyor {

// "whsec_<base64>" (the specification's form: the key is the decoded bytes, 24 to 64 of
// them), or any other text of 16 to 256 bytes, used as the key as it is. nullopt, with
// why, otherwise.
std::optional<std::string> SigningKeyOf(std::string_view secret, std::string& why);

// "v1,<base64 of HMAC-SHA256(key, id + "." + timestamp + "." + body)>".
std::string WebhookSignature(std::string_view key, std::string_view id, std::string_view timestamp,
                             std::string_view body);

}  // namespace conveyor
