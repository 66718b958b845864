// madvise(MADV_HUGEPAGE) for large output buffers, shared by the CPU drivers (roundtrip_cpu.cpp,
// ste_backward_cpu.cpp).
#pragma once

#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "nnjpeg/params.h"

namespace nnjpeg {
namespace cpu {

// Large outputs are usually fresh allocations whose pages the kernel touches first: ask Linux for huge
// pages there (2 MiB instead of 4 KiB), which makes the first-touch page faults cheap. A hint only: the
// contents and the result do not change.
inline void advise_huge_pages(const void* base, const int64_t* strides, const int64_t* sizes, int dims,
                              int64_t elem) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  int64_t last = 0;
  for (int d = 0; d < dims; ++d) {
    if (sizes[d] == 0) return;
    last += (sizes[d] - 1) * strides[d];
  }
  const int64_t bytes = (last + 1) * elem;
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  if (bytes < int64_t(4 * kHuge)) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(base) + uintptr_t(bytes)) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)base, (void)strides, (void)sizes, (void)dims, (void)elem;
#endif
}

inline int64_t element_size(int dtype) { return dtype == kUInt8 ? 1 : dtype == kFloat32 ? 4 : 8; }

}  // namespace cpu
}  // namespace nnjpeg
