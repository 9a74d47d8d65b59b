// RequestArena: a connection's block of memory that one request's header fields, method
// and target are carved from (Beast's basic_fields allocates each field on its own), reset
// before each request; what does not fit comes from the heap. ArenaAllocator is the
// allocator Beast's fields take. Owned by the session coroutine, on its I/O thread.
#pragma once

#include <array>
#include <cstddef>
#include <new>

namespace conveyor {

class RequestArena {
 public:
  RequestArena() = default;
  RequestArena(const RequestArena&) = delete;
  RequestArena& operator=(const RequestArena&) = delete;

  void* Allocate(size_t bytes, size_t align) {
    const size_t start = (used_ + align - 1) & ~(align - 1);
    if (align <= alignof(std::max_align_t) && start + bytes <= block_.size()) {
      used_ = start + bytes;
      return block_.data() + start;
    }
    return ::operator new(bytes, std::align_val_t(align));
  }

  // Memory of the block is given back all at once by Reset(); the heap's at once.
  void Deallocate(void* p, size_t align) noexcept {
    const char* c = static_cast<const char*>(p);
    if (c >= block_.data() && c < block_.data() + block_.size()) return;
    ::operator delete(p, std::align_val_t(align));
  }

  // REQUIRES: everything allocated from the block has been deallocated.
  void Reset() { used_ = 0; }

 private:
  alignas(std::max_align_t) std::array<char, 2048> block_;
  size_t used_ = 0;
};

template <typename T>
class ArenaAllocator {
 public:
  using value_type = T;

  explicit ArenaAllocator(RequestArena& arena) noexcept : arena_(&arena) {}
  template <typename U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept : arena_(other.arena()) {}

  T* allocate(size_t n) { return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T* p, size_t) noexcept { arena_->Deallocate(p, alignof(T)); }

  RequestArena* arena() const { return arena_; }

  template <typename U>
  bool operator==(const ArenaAllocator<U>& other) const noexcept {
    return arena_ == other.arena();
  }

 private:
  RequestArena* arena_;
};

}  // namespace conveyor
