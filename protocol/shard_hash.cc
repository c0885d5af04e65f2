#include "protocol/shard_hash.h"

namespace xdc {

uint64_t Fnv1a64(std::string_view bytes, uint64_t seed) {
  constexpr uint64_t kPrime = 1099511628211ull;
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kPrime;
  }
  return h;
}

uint64_t Fnv1a64Int(int64_t value, uint64_t seed) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xFF);
  }
  return Fnv1a64(std::string_view(bytes, 8), seed);
}

uint64_t Fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

int32_t ShardFor(std::string_view namespace_id, std::string_view workflow_id, int32_t shard_count) {
  // The NUL separator keeps ("ab", "c") and ("a", "bc") apart.
  uint64_t h = Fnv1a64(namespace_id);
  h = Fnv1a64(std::string_view("\0", 1), h);
  h = Fnv1a64(workflow_id, h);
  // FNV-1a's low bits depend only on the inputs' low bits, so reduce a finalised value.
  return static_cast<int32_t>(Fmix64(h) % static_cast<uint64_t>(shard_count));
}

}  // namespace xdc
