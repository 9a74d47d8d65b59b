// NameThisThread: gives the calling thread a name that top -H, perf and gdb show (io-0,
// commit-1, wal-sync); at most 15 characters are kept. Any thread, for itself.
#pragma once

#include <pthread.h>

#include <string>

namespace conveyor {

inline void NameThisThread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace conveyor
