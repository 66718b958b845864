// Whether the CPU forward writes its float32 output (and a uint8 one with 4:2:0, the AVX-512 path's 16-byte
// pieces: simd_420.h) with streaming (non-temporal) stores, which skip the
// read-for-ownership of every output line and keep the output from evicting the input from the caches.
// They pay off only for a large output whose pages are already in memory (a buffer the allocator reused):
// a page the OS zeroes at the kernel's first touch is left in the cache, and a streaming store to a cached
// line costs a second write to memory. Measured here (W1, float32, 2 threads): 390 -> 470 MPixel/s into a
// reused output, 317 -> 231 into one faulted in by the stores themselves; fresh outputs are therefore
// populated first (output_pages.h). A hint only: the stored values are the same.
#pragma once

#include <stdint.h>

#include "nnjpeg/params.h"
#include "output_pages.h"

namespace nnjpeg {
namespace cpu {

// Streaming stores into a tensor of `elem`-byte elements (element strides `strides`, sizes `sizes`, `dims`
// dimensions, the last one dense) whose rows are written in `piece`-byte stores: at least kLargeOutputBytes
// (smaller ones are likely read again while still in the cache), rows of whole pieces (every other stride a
// multiple of a piece, the base aligned to one) and pages resident (prepare_output populates a fresh buffer
// first).
inline bool streamable(const void* base, const int64_t* strides, const int64_t* sizes, int dims, int64_t elem,
                       int64_t piece) {
  if (strides[dims - 1] != 1) return false;
  for (int d = 0; d + 1 < dims; ++d)
    if (strides[d] * elem % piece != 0) return false;
  if (reinterpret_cast<uintptr_t>(base) % uint64_t(piece) != 0) return false;
  const int64_t bytes = extent_bytes(strides, sizes, dims, elem);
  return bytes >= kLargeOutputBytes && pages_resident(base, bytes);
}

// float32 rows stream as whole 32-byte vectors.
inline bool streamable_float32(int dtype, const void* base, const int64_t* strides, const int64_t* sizes, int dims) {
  return dtype == kFloat32 && streamable(base, strides, sizes, dims, int64_t(sizeof(float)), 32);
}

// uint8 rows stream as 16-byte pieces.
inline bool streamable_uint8(int dtype, const void* base, const int64_t* strides, const int64_t* sizes, int dims) {
  return dtype == kUInt8 && streamable(base, strides, sizes, dims, 1, 16);
}

// Streaming stores for this forward call's output.
inline bool use_streaming_stores(const RoundtripParams& p) {
  const int64_t sizes[5] = {p.levels, p.n, p.c, p.h, p.w};
  return streamable_float32(p.dtype, p.output, p.out_stride, sizes, 5) ||
         (uses_420(p) && streamable_uint8(p.dtype, p.output, p.out_stride, sizes, 5));
}

}  // namespace cpu
}  // namespace nnjpeg
