// Whether the CPU forward writes its float32 output with streaming (non-temporal) stores, which skip the
// read-for-ownership of every output line and keep the output from evicting the input from the caches.
// They pay off only for a large output whose pages are already in memory (a buffer the allocator reused):
// a fresh page is zeroed by the OS at its first touch, which leaves it in the cache, and a streaming store
// to a cached line costs a second write to memory. Measured here (W1, float32, 2 threads): 390 -> 470
// MPixel/s into a reused output, 317 -> 231 into a fresh one. A hint only: the stored values are the same.
#pragma once

#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "nnjpeg/params.h"

namespace nnjpeg {
namespace cpu {

// Outputs smaller than this are likely read again while still in the cache: plain stores.
constexpr int64_t kStreamingMinBytes = int64_t(32) << 20;

// True when the first, middle and last page of [base, base + bytes) are resident (mincore): the output is
// memory the process already touched, not a fresh mapping.
inline bool pages_resident(const void* base, int64_t bytes) {
#if defined(__linux__)
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || bytes < 3 * page) return false;
  const uintptr_t first = (reinterpret_cast<uintptr_t>(base) + uintptr_t(page) - 1) & ~uintptr_t(page - 1);
  const uintptr_t last = (reinterpret_cast<uintptr_t>(base) + uintptr_t(bytes) - uintptr_t(page)) & ~uintptr_t(page - 1);
  const uintptr_t samples[3] = {first, first + ((last - first) / 2 & ~uintptr_t(page - 1)), last};
  for (uintptr_t addr : samples) {
    unsigned char resident = 0;
    if (mincore(reinterpret_cast<void*>(addr), size_t(page), &resident) != 0 || !(resident & 1)) return false;
  }
  return true;
#else
  (void)base, (void)bytes;
  return false;
#endif
}

// Streaming stores for this forward call: a float32 output of at least kStreamingMinBytes whose rows are
// whole 32-byte vectors (dense rows, 32-byte aligned) and whose pages are resident.
inline bool use_streaming_stores(const RoundtripParams& p) {
  if (p.dtype != kFloat32 || p.out_stride[4] != 1) return false;
  for (int d = 0; d < 4; ++d)
    if (p.out_stride[d] % 8 != 0) return false;
  if (reinterpret_cast<uintptr_t>(p.output) % 32 != 0) return false;
  const int64_t bytes = p.levels * p.n * p.c * p.h * p.w * int64_t(sizeof(float));
  return bytes >= kStreamingMinBytes && pages_resident(p.output, bytes);
}

}  // namespace cpu
}  // namespace nnjpeg
