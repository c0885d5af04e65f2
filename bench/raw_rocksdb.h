// The raw RocksDB limit: batched Puts of records of a given size into a fresh database, each
// batch one WriteBatch whose WAL is synced (what xdcd's group commit does for an acknowledged
// append). This file talks to RocksDB directly, the one exception to "RocksDB only in store/":
// it measures the library itself and touches no xdc data.
//
// Contract: `dir` must not exist or be empty; it is left behind (the caller removes it).
// Thread-safety: call from one thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace xdc::bench {

// Records per WriteBatch: about what one group commit gathers under load.
inline constexpr int kRawRocksDbBatchRecords = 100;

struct RawRocksDbOptions {
  std::string dir;
  int64_t records = 0;
  int record_bytes = 0;
};

struct RawRocksDbResult {
  int64_t records = 0;
  int record_bytes = 0;
  int batch_records = kRawRocksDbBatchRecords;
  double seconds = 0;
  double records_per_second = 0;
};

[[nodiscard]] absl::StatusOr<RawRocksDbResult> RunRawRocksDb(const RawRocksDbOptions& options);

}  // namespace xdc::bench
