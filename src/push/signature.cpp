#include "push/signature.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/base64.h"

namespace conveyor {

std::optional<std::string> SigningKeyOf(std::string_view secret, std::string& why) {
  constexpr std::string_view kPrefix = "whsec_";
  if (secret.substr(0, kPrefix.size()) == kPrefix) {
    std::optional<std::string> key = FromBase64(secret.substr(kPrefix.size()));
    if (!key) {
      why = "a whsec_ secret must be whsec_ and standard, padded base64";
      return std::nullopt;
    }
    if (key->size() < 24 || key->size() > 64) {
      why = "a whsec_ secret must decode to 24 to 64 bytes";
      return std::nullopt;
    }
    return key;
  }
  if (secret.size() < 16 || secret.size() > 256) {
    why = "a secret must be whsec_<base64> or 16 to 256 bytes of text";
    return std::nullopt;
  }
  return std::string(secret);
}

// OpenSSL 3's EVP_MAC (the HMAC_CTX calls are deprecated); the three parts are fed in
// turn, so the body is not copied.
std::string WebhookSignature(std::string_view key, std::string_view id, std::string_view timestamp,
                             std::string_view body) {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac);
  auto feed = [ctx](std::string_view part) {
    EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size());
  };
  EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params);
  feed(id);
  feed(".");
  feed(timestamp);
  feed(".");
  feed(body);
  EVP_MAC_final(ctx, mac, &mac_len, sizeof mac);
  EVP_MAC_CTX_free(ctx);
  return "v1," + Base64(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

}  // namespace conveyor
