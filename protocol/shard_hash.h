// Stable hashing for anything persisted or sent between processes.
//
// FNV-1a 64 is fixed by its specification, so the shard of a workflow is the same in every
// process, build and machine. Never use std::hash or absl::Hash for these purposes.
#pragma once

#include <cstdint>
#include <string_view>

namespace xdc {

// FNV-1a, 64 bit, continuing from `seed` (pass kFnv1a64Offset to start).
inline constexpr uint64_t kFnv1a64Offset = 14695981039346656037ull;
[[nodiscard]] uint64_t Fnv1a64(std::string_view bytes, uint64_t seed = kFnv1a64Offset);
// Continues `seed` with the 8 little-endian bytes of `value` (a canonical integer layout).
[[nodiscard]] uint64_t Fnv1a64Int(int64_t value, uint64_t seed);
// murmur3's 64-bit finaliser: spreads every input bit over the whole word, so a value reduced
// modulo a small count depends on all of FNV-1a's input (whose low bits depend only on the
// inputs' low bits).
[[nodiscard]] uint64_t Fmix64(uint64_t h);

// shard = fmix64(Fnv1a64(namespace_id, '\0', workflow_id)) mod shard_count, where fmix64 is
// murmur3's 64-bit finaliser. Requires shard_count > 0.
[[nodiscard]] int32_t ShardFor(std::string_view namespace_id, std::string_view workflow_id,
                               int32_t shard_count);

}  // namespace xdc
