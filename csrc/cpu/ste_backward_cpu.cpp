// CPU driver of the "ste" backward from the saved output (ste_backward.h). Work item: a strip of up to
// kStripBlocks blocks of one block row, walked in row-major order: first the clamp test of every output row
// of the strip, then the pass-through rows of the blocks that need no pixels, then the blocks that do. Each
// step reads whole image rows one after the other, which the hardware prefetcher follows (block by block,
// 3 x 8 row streams per tensor interleave and the loads wait on memory: 1.6x slower on W1). Same predicate
// and arithmetic as the per-block CUDA kernel, so the results are bitwise the same; items are independent,
// so they do not depend on the thread count.
#include <stdint.h>

#include <type_traits>

#include "huge_pages.h"
#include "nnjpeg/dispatch.h"
#include "nnjpeg/kernels.h"
#include "nnjpeg/ste_backward.h"
#include "parallel.h"

namespace nnjpeg {
namespace cpu {
namespace {

constexpr int64_t kStripBlocks = 64;

template <typename IO, typename T>
void ste_backward_strip(const SteBackwardParams& s, int64_t n, int64_t by, int64_t bx0, int64_t bx1) {
  const RoundtripParams& p = s.p;
  // Clamp test: one flag per pixel column of the strip, ORed over the levels, channels and rows (long
  // contiguous loops, which the compiler vectorizes), then one flag per block.
  const int64_t x0 = bx0 * 8, x1 = bx1 * 8 < p.w ? bx1 * 8 : p.w, os = s.output_stride[4];
  const int64_t rows = block_rows(p, BlockCoord{n, by, bx0});
  uint8_t column[kStripBlocks * 8] = {};
  const IO* out = static_cast<const IO*>(s.output);
  for (int64_t k = 0; k < p.levels; ++k)
    for (int64_t ch = 0; ch < p.c; ++ch)
      for (int64_t r = 0; r < rows; ++r) {
        const IO* row = out + offset5(s.output_stride, k, n, ch, by * 8 + r, x0);
        if (os == 1) {
          for (int64_t x = 0; x < x1 - x0; ++x) column[x] |= uint8_t(output_needs_pixel(row[x]));
        } else {
          for (int64_t x = 0; x < x1 - x0; ++x) column[x] |= uint8_t(output_needs_pixel(row[x * os]));
        }
      }
  bool needs[kStripBlocks];
  for (int64_t bx = bx0; bx < bx1; ++bx) {
    int any = s.always_recompute ? 1 : 0;
    for (int64_t x = (bx - bx0) * 8; x < (bx - bx0) * 8 + 8 && x < x1 - x0; ++x) any |= column[x];
    needs[bx - bx0] = any != 0;
  }
  for (int64_t ch = 0; ch < p.c; ++ch)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t bx = bx0; bx < bx1; ++bx)
        if (!needs[bx - bx0]) ste_pass_row<IO, T>(s, BlockCoord{n, by, bx}, ch, r);
  for (int64_t bx = bx0; bx < bx1; ++bx)
    if (needs[bx - bx0]) ste_recompute_block<IO, T>(s, BlockCoord{n, by, bx});
}

}  // namespace

void ste_backward(const SteBackwardParams& s) {
  const RoundtripParams& p = s.p;
  const int64_t in_sizes[4] = {p.n, p.c, p.h, p.w};
  advise_huge_pages(p.grad_input, p.grad_in_stride, in_sizes, 4, element_size(p.dtype));
  const Geometry g = geometry(p);
  const int64_t strips_x = (g.blocks_x + kStripBlocks - 1) / kStripBlocks;
  dispatch_dtype(p.dtype, [&](auto io, auto compute) {
    using IO = decltype(io);
    using T = decltype(compute);
    if constexpr (!std::is_same<IO, uint8_t>::value) {  // uint8 is rejected by the binding
      parallel_for(p.n * g.blocks_y * strips_x, p.num_threads, [&](int64_t item) {
        const BlockCoord strip = block_coord(item, g.blocks_y, strips_x);
        const int64_t bx0 = strip.bx * kStripBlocks;
        const int64_t bx1 = bx0 + kStripBlocks < g.blocks_x ? bx0 + kStripBlocks : g.blocks_x;
        ste_backward_strip<IO, T>(s, strip.n, strip.by, bx0, bx1);
      });
    }
  });
}

}  // namespace cpu
}  // namespace nnjpeg
