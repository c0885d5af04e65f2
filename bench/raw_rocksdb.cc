#include "bench/raw_rocksdb.h"

#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace xdc::bench {

absl::StatusOr<RawRocksDbResult> RunRawRocksDb(const RawRocksDbOptions& options) {
  if (options.records < 1 || options.record_bytes < 1) {
    return absl::InvalidArgumentError("raw RocksDB run needs records and bytes > 0");
  }
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.error_if_exists = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status opened = rocksdb::DB::Open(db_options, options.dir, &raw);
  if (!opened.ok()) {
    return absl::InternalError(
        absl::StrCat("raw RocksDB: open ", options.dir, ": ", opened.ToString()));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const std::string value(static_cast<size_t>(options.record_bytes), 'x');
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < options.records;) {
    rocksdb::WriteBatch batch;
    for (int n = 0; n < kRawRocksDbBatchRecords && i < options.records; ++n, ++i) {
      batch.Put(absl::StrFormat("event/%016d", i), value);
    }
    rocksdb::Status s = db->Write(write_options, &batch);
    if (!s.ok()) return absl::InternalError(absl::StrCat("raw RocksDB: write: ", s.ToString()));
  }
  RawRocksDbResult result;
  result.records = options.records;
  result.record_bytes = options.record_bytes;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.records_per_second = static_cast<double>(options.records) / result.seconds;
  return result;
}

}  // namespace xdc::bench
