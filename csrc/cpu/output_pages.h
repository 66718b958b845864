// How the CPU drivers prepare a large output buffer (roundtrip_cpu.cpp, ste_backward_cpu.cpp): huge pages,
// and the first touch of fresh pages done up front, in one contiguous share per thread.
//
// A fresh output (the usual case: torch allocates every result anew, and large blocks are new mappings)
// has its pages zeroed by the OS at their first touch. Touched by the kernel's own stores, two threads fault
// page after page into the same mapping, and on the 2-core guest that measured as slow as the kernel itself
// and erratic (W1 float32: 55-65 ms a call against 26 ms into a reused buffer). Populated first, with
// madvise(MADV_POPULATE_WRITE) over one contiguous half per thread, the same call takes 36 ms, and the
// kernel then stores into resident pages, with streaming stores where they pay (streaming_stores.h). Hints
// only: no contents change.
#pragma once

#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "nnjpeg/params.h"
#include "parallel.h"

namespace nnjpeg {
namespace cpu {

// Outputs at least this large are populated before the kernel runs (and may take streaming stores).
constexpr int64_t kLargeOutputBytes = int64_t(32) << 20;
constexpr uintptr_t kHugePageBytes = uintptr_t(1) << 21;  // a transparent huge page

inline int64_t element_size(int dtype) { return dtype == kUInt8 ? 1 : dtype == kFloat32 ? 4 : 8; }

// Bytes from the first element to one past the last of a strided buffer (0 when it is empty).
inline int64_t extent_bytes(const int64_t* strides, const int64_t* sizes, int dims, int64_t elem) {
  int64_t last = 0;
  for (int d = 0; d < dims; ++d) {
    if (sizes[d] == 0) return 0;
    last += (sizes[d] - 1) * strides[d];
  }
  return (last + 1) * elem;
}

// True when the first, middle and last page of [base, base + bytes) are resident (mincore): memory the
// process already touched, not a fresh mapping.
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

// Huge pages (2 MiB instead of 4 KiB) for a large buffer: cheaper first-touch faults. A hint only.
inline void advise_huge_pages(const void* base, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < int64_t(4 * kHugePageBytes)) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(base) + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(base) + uintptr_t(bytes)) & ~(kHugePageBytes - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)base, (void)bytes;
#endif
}

// Prepares a strided output buffer the kernel is about to write: huge pages, and for a large fresh one its
// pages populated up front, one contiguous share per thread (see the top of this file).
inline void prepare_output(const void* base, const int64_t* strides, const int64_t* sizes, int dims, int64_t elem,
                           int num_threads) {
  const int64_t bytes = extent_bytes(strides, sizes, dims, elem);
  advise_huge_pages(base, bytes);
#if defined(__linux__)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL and the kernel's stores fault instead
#endif
  if (bytes < kLargeOutputBytes || pages_resident(base, bytes)) return;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(base) & ~(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(base) + uintptr_t(bytes);
  const int shares = num_threads < 1 ? 1 : num_threads;
  const uintptr_t share = ((end - begin) / uintptr_t(shares) + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  parallel_shares(shares, [&](int i) {
    const uintptr_t lo = begin + uintptr_t(i) * share, hi = lo + share < end ? lo + share : end;
    if (lo < hi) madvise(reinterpret_cast<void*>(lo), size_t(hi - lo), MADV_POPULATE_WRITE);
  });
#else
  (void)num_threads;
#endif
}

}  // namespace cpu
}  // namespace nnjpeg
