// SecureRandom: lease tokens and other secrets from the kernel's CSPRNG (getrandom(2)),
// drawn in blocks so that a token costs no system call of its own. Unpredictable even to
// a client that has seen every earlier token. One instance per owner (a shard's engine);
// not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace conveyor {

class SecureRandom {
 public:
  // 128 random bits as 32 lowercase hex digits.
  std::string Token128();

 private:
  void Fill();

  std::array<uint8_t, 512> pool_{};
  size_t used_ = pool_.size();
};

}  // namespace conveyor
