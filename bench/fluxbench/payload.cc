#include "bench/fluxbench/payload.h"

#include <algorithm>
#include <cstring>

namespace flux::bench {
namespace {

void put_u64_be(uint8_t* out, uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

// splitmix64's finalizer: consecutive counters give unrelated words.
uint64_t mix(uint64_t x) noexcept {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The filler of `counter`, bytes [from, from + n) of it, into `out`.
void fill(uint8_t* out, uint64_t counter, size_t from, size_t n) noexcept {
  const uint64_t seed = mix(counter);
  for (size_t i = 0; i < n;) {
    const size_t pos = from + i;
    const uint64_t word = seed + (pos / 8) * 0x9e3779b97f4a7c15ULL;
    uint8_t bytes[8];
    std::memcpy(bytes, &word, 8);
    const size_t take = std::min<size_t>(8 - pos % 8, n - i);
    std::memcpy(out + i, bytes + pos % 8, take);
    i += take;
  }
}

}  // namespace

void put_u32_be(uint8_t* out, uint32_t v) noexcept {
  out[0] = static_cast<uint8_t>(v >> 24);
  out[1] = static_cast<uint8_t>(v >> 16);
  out[2] = static_cast<uint8_t>(v >> 8);
  out[3] = static_cast<uint8_t>(v);
}

uint32_t get_u32_be(const uint8_t* in) noexcept {
  return (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) | (uint32_t{in[2]} << 8) | in[3];
}

void write_frame(uint8_t* out, uint32_t size, uint64_t counter, uint64_t send_ns) noexcept {
  put_u32_be(out, size);
  uint8_t* payload = out + kFrameHeader;
  put_u64_be(payload, counter);
  put_u64_be(payload + 8, send_ns);
  fill(payload + kPayloadHeader, counter, 0, size - kPayloadHeader);
}

bool payload_matches(const uint8_t* payload, size_t len, uint32_t size, uint64_t counter,
                     uint64_t send_ns) noexcept {
  if (len != size) return false;
  uint8_t expect[256];
  put_u64_be(expect, counter);
  put_u64_be(expect + 8, send_ns);
  if (std::memcmp(payload, expect, kPayloadHeader) != 0) return false;
  // The filler, compared a chunk at a time against a regenerated copy.
  for (size_t done = 0; done < size - kPayloadHeader;) {
    const size_t n = std::min(sizeof expect, size - kPayloadHeader - done);
    fill(expect, counter, done, n);
    if (std::memcmp(payload + kPayloadHeader + done, expect, n) != 0) return false;
    done += n;
  }
  return true;
}

}  // namespace flux::bench
