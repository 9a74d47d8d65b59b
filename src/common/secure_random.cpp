#include "common/secure_random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace conveyor {

void SecureRandom::Fill() {
  size_t got = 0;
  while (got < pool_.size()) {
    ssize_t n = ::getrandom(pool_.data() + got, pool_.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // No CSPRNG means no safe token: refuse to run on rather than hand out guessable ones.
      std::perror("conveyor: getrandom");
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  used_ = 0;
}

std::string SecureRandom::Token128() {
  if (used_ + 16 > pool_.size()) Fill();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    const uint8_t b = pool_[used_ + i];
    token[2 * i] = kHex[b >> 4];
    token[2 * i + 1] = kHex[b & 15];
  }
  used_ += 16;
  return token;
}

}  // namespace conveyor
