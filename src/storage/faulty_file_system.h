// FaultyFileSystem: a RocksDB FileSystem wrapper for failure tests. While the flag file
// exists, every append, flush and sync of a WAL file fails: with "no space" when the file
// says `enospc`, else with an I/O error; when it says `slow`, syncs succeed after 2 s;
// `eio-sync` fails only syncs (writes succeed).
// `enospc-all` and `eio-all` fail every file RocksDB writes or creates (tables, MANIFEST,
// OPTIONS, WAL), as a real full or broken disk does. Enabled only when CONVEYOR_FAULT_FILE
// names the flag file (tests/integration/test_storage_faults.py); never on in normal runs.
#pragma once

#include <rocksdb/file_system.h>

#include <memory>
#include <string>

namespace conveyor {

std::shared_ptr<rocksdb::FileSystem> NewFaultyFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                                                         std::string flag_path);

}  // namespace conveyor
