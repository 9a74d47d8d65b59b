// Callback: the function type of every completion the engine, the shards and the journal
// hand around (a lease's answer, a durability wait, a shard command's reply). Move-only
// (absl::AnyInvocable): it can hold a coroutine's handler as it is, and a capture of up to
// two pointers without a heap allocation; std::function needed a copyable target, hence
// a shared_ptr and an allocation per hop. Called at most once; owned by whoever holds it.
#pragma once

#include <absl/functional/any_invocable.h>

namespace conveyor {

template <typename Signature>
using Callback = absl::AnyInvocable<Signature>;

}  // namespace conveyor
