// CPU kernel: the block pipelines of roundtrip_block.h over all blocks, on worker threads.
#include <type_traits>

#include "nnjpeg/dispatch.h"
#include "nnjpeg/kernels.h"
#include "nnjpeg/roundtrip_block.h"
#include "parallel.h"

namespace nnjpeg {
namespace cpu {

void roundtrip_forward(const RoundtripParams& p) {
  const Geometry g = geometry(p);
  dispatch_dtype(p.dtype, [&](auto io, auto compute) {
    using IO = decltype(io);
    using T = decltype(compute);
    if (uses_420(p)) {
      const int64_t cby = g.chroma_h / 8, cbx = g.chroma_w / 8;
      parallel_for(p.n * cby * cbx, p.num_threads,
                   [&](int64_t item) { chroma_block_420<IO, T>(p, g, block_coord(item, cby, cbx)); });
      parallel_for(p.n * g.blocks_y * g.blocks_x, p.num_threads, [&](int64_t item) {
        luma_block_420<IO, T>(p, g, block_coord(item, g.blocks_y, g.blocks_x));
      });
    } else {
      parallel_for(p.n * g.blocks_y * g.blocks_x, p.num_threads, [&](int64_t item) {
        roundtrip_block_444<IO, T>(p, block_coord(item, g.blocks_y, g.blocks_x));
      });
    }
  });
}

void roundtrip_backward(const RoundtripParams& p) {
  const Geometry g = geometry(p);
  dispatch_dtype(p.dtype, [&](auto io, auto compute) {
    using IO = decltype(io);
    using T = decltype(compute);
    if constexpr (!std::is_same<IO, uint8_t>::value) {
      parallel_for(p.n * g.blocks_y * g.blocks_x, p.num_threads, [&](int64_t item) {
        roundtrip_block_444_backward<IO, T>(p, block_coord(item, g.blocks_y, g.blocks_x));
      });
    }
  });
}

}  // namespace cpu
}  // namespace nnjpeg
