// CPU kernel: the block pipelines of roundtrip_block.h over all blocks, on worker threads. The forward
// (4:4:4 and 4:2:0, uint8/float32) and the 4:4:4 backward (float32) run on the SIMD path (simd_kernels.h)
// chosen at run time; the rest, and the "scalar" choice, run the shared block functions one block per item.
#include <math.h>
#include <stdint.h>

#include <atomic>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpu_isa.h"
#include "nnjpeg/dispatch.h"
#include "nnjpeg/kernels.h"
#include "nnjpeg/roundtrip_block.h"
#include "parallel.h"
#include "simd_kernels.h"
#include "output_pages.h"
#include "streaming_stores.h"

namespace nnjpeg {
namespace cpu {
namespace {

using ForwardFn = void (*)(const RoundtripParams&, const GroupLayout&, int64_t, int64_t, InputRange*);
using BackwardFn = void (*)(const RoundtripParams&, const GroupLayout&, int64_t, int64_t);

struct SimdPath {
  int lanes;
  ForwardFn forward;
  BackwardFn backward;
  BackwardFn chroma_420;  // same shape: no input range
  ForwardFn luma_420;
  ForwardFn one_pass_420;
  void (*divide_values)(const float*, float*, int64_t, float);  // the test hooks of kernels.h
  int64_t (*store_division_mismatches)();
};

// The SIMD path of the current ISA; lanes = 0 for the scalar path.
#define NNJ_SIMD_PATH(isa)                                                                            \
  SimdPath {                                                                                          \
    isa::lanes(), isa::forward_444, isa::backward_444, isa::chroma_420, isa::luma_420, isa::one_pass_420, \
        isa::divide_values, isa::store_division_mismatches                                            \
  }
SimdPath simd_path() {
  switch (current_isa()) {  // cpu_isa.cpp only selects what this build compiled
#if defined(NNJPEG_X86_ISAS)
    case Isa::kAvx512: return NNJ_SIMD_PATH(avx512);
    case Isa::kAvx2: return NNJ_SIMD_PATH(avx2);
#endif
#if defined(NNJPEG_SIMD)
    case Isa::kGeneric: return NNJ_SIMD_PATH(generic);
#endif
    default: return {0, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  }
}
#undef NNJ_SIMD_PATH

// The lanes of one group share their tables (they are scalars in the block math): groups cross from one
// image to the next only when every image has the same tables (and the caller allows it).
GroupLayout group_layout(const RoundtripParams& p, int64_t blocks_y, int64_t blocks_x, int lanes,
                         bool may_span = true) {
  GroupLayout l;
  l.blocks_x = blocks_x;
  l.blocks_per_image = blocks_y * blocks_x;
  l.groups_per_image = (l.blocks_per_image + lanes - 1) / lanes;
  l.spans_images = may_span && p.table_stride_image == 0;
  l.groups = l.spans_images ? (p.n * l.blocks_per_image + lanes - 1) / lanes : p.n * l.groups_per_image;
  return l;
}

// Folds one work item's input range into *all.
void merge_range(const InputRange& r, InputRange* all) {
  all->lo = r.lo < all->lo ? r.lo : all->lo;
  all->hi = r.hi > all->hi ? r.hi : all->hi;
  all->nan = all->nan || r.nan;
}

// Runs fn(begin, end, range) over every group of the batch in work items of a few groups. Each group is
// computed by one thread, independently, so results do not depend on the thread count. With `all`, each
// item folds its input pixels into its own range; they are reduced into *all in item order.
template <typename Fn>
void run_groups(const RoundtripParams& p, const GroupLayout& l, InputRange* all, const Fn& fn) {
  const int64_t groups = l.groups, per_item = 2, items = (groups + per_item - 1) / per_item;
  std::vector<InputRange> ranges(all ? size_t(items) : 0, InputRange{INFINITY, -INFINITY, false});
  parallel_for(items, p.num_threads, [&](int64_t item) {
    const int64_t begin = item * per_item, end = begin + per_item < groups ? begin + per_item : groups;
    fn(begin, end, all ? &ranges[size_t(item)] : nullptr);
  });
  for (const InputRange& r : ranges) merge_range(r, all);
}

// 4:2:0 in one pass (simd_420.h, one_pass_420) over work items of whole images: one image per item, or for
// small images (fewer than 4 groups of macro-blocks) a few images whose macro-blocks share groups, as many
// as keep a group inside one item and the item's input within the cache. False where that leaves too few
// items for the threads (few images: the two phases then share out the groups of the batch).
bool one_pass_420(const RoundtripParams& p, const Geometry& g, const SimdPath& path, InputRange* all) {
  const int64_t lanes = path.lanes, threads = p.num_threads < 1 ? 1 : p.num_threads;
  const int64_t mb_per_image = (g.chroma_h / 8) * (g.chroma_w / 8);
  const GroupLayout mb = group_layout(p, g.chroma_h / 8, g.chroma_w / 8, path.lanes, mb_per_image < 4 * lanes);
  int64_t chunk = mb.spans_images ? lanes / std::gcd(lanes, mb_per_image) : 1;  // its groups end with it
  const int64_t image_bytes = p.c * p.h * p.w * element_size(p.dtype), budget = 256 * 1024;
  while (chunk * 2 * image_bytes <= budget && p.n / (chunk * 2) >= 8 * threads) chunk *= 2;
  const int64_t items = (p.n + chunk - 1) / chunk;
  if (items < 2 * threads) return false;
  std::vector<InputRange> ranges(all ? size_t(items) : 0, InputRange{INFINITY, -INFINITY, false});
  parallel_for(items, p.num_threads, [&](int64_t item) {
    const int64_t n0 = item * chunk, n1 = n0 + chunk < p.n ? n0 + chunk : p.n;
    const int64_t first = mb.spans_images ? n0 * mb_per_image / lanes : n0 * mb.groups_per_image;
    const int64_t end = mb.spans_images ? (n1 * mb_per_image + lanes - 1) / lanes : n1 * mb.groups_per_image;
    path.one_pass_420(p, mb, first, end, all ? &ranges[size_t(item)] : nullptr);
  }, 1);
  for (const InputRange& r : ranges) merge_range(r, all);
  return true;
}

// The SIMD forward (4:4:4 and 4:2:0, uint8/float32); false when the scalar path must run instead. Float32
// input with p.input_range set gets its range published there (params.h).
bool simd_forward(const RoundtripParams& p, const Geometry& g) {
  const SimdPath path = simd_path();
  if (!(p.dtype == kFloat32 || p.dtype == kUInt8) || path.lanes == 0) return false;
  const bool fold_range = p.input_range != nullptr && p.dtype == kFloat32;
  InputRange all{INFINITY, -INFINITY, false};
  const GroupLayout luma = group_layout(p, g.blocks_y, g.blocks_x, path.lanes);
  if (uses_420(p)) {
    InputRange* range = fold_range ? &all : nullptr;
    if (!one_pass_420(p, g, path, range)) {  // few images: two phases, each over the batch's groups
      const GroupLayout chroma = group_layout(p, g.chroma_h / 8, g.chroma_w / 8, path.lanes);
      run_groups(p, chroma, nullptr, [&](int64_t b, int64_t e, InputRange*) { path.chroma_420(p, chroma, b, e); });
      run_groups(p, luma, range, [&](int64_t b, int64_t e, InputRange* r) { path.luma_420(p, luma, b, e, r); });
    }
  } else {
    run_groups(p, luma, fold_range ? &all : nullptr,
               [&](int64_t b, int64_t e, InputRange* r) { path.forward(p, luma, b, e, r); });
  }
  if (fold_range) {
    p.input_range[0] = all.nan ? NAN : all.lo;
    p.input_range[1] = all.nan ? NAN : all.hi;
    p.input_range[2] = 1.0f;
  }
  return true;
}

// The SIMD backward (4:4:4, float32); false when the scalar path must run instead.
bool simd_backward(const RoundtripParams& p, const Geometry& g) {
  const SimdPath path = simd_path();
  if (p.dtype != kFloat32 || uses_420(p) || path.lanes == 0) return false;
  const GroupLayout luma = group_layout(p, g.blocks_y, g.blocks_x, path.lanes);
  run_groups(p, luma, nullptr, [&](int64_t b, int64_t e, InputRange*) { path.backward(p, luma, b, e); });
  return true;
}

// 4:2:0 phase 1, shared by the forward and the backward: every chroma block decoded into p.workspace.
template <typename IO, typename T>
void chroma_phase_420(const RoundtripParams& p, const Geometry& g) {
  const int64_t cby = g.chroma_h / 8, cbx = g.chroma_w / 8;
  parallel_for(p.n * cby * cbx, p.num_threads,
               [&](int64_t item) { chroma_block_420<IO, T>(p, g, block_coord(item, cby, cbx)); });
}

}  // namespace

bool streams_output(const RoundtripParams& p) { return use_streaming_stores(p); }

int64_t store_division_mismatches() {
  const SimdPath path = simd_path();
  return path.lanes == 0 ? 0 : path.store_division_mismatches();  // the scalar path divides (store_255)
}

void divide_like_quantizer(const float* a, float* q, int64_t n, float b) {
  const SimdPath path = simd_path();
  if (path.lanes != 0) return path.divide_values(a, q, n, b);
  for (int64_t i = 0; i < n; ++i) q[i] = a[i] / b;  // the scalar path divides (quantize_dequantize)
}

void roundtrip_forward(const RoundtripParams& params) {
  RoundtripParams p = params;
  const Geometry g = geometry(p);
  const int64_t out_sizes[5] = {p.levels, p.n, p.c, p.h, p.w};
  prepare_output(p.output, p.out_stride, out_sizes, 5, element_size(p.dtype), p.num_threads);
  p.stream_output = use_streaming_stores(p);  // read by the SIMD store (simd_vec.h: store_pair)
  static std::atomic<uint64_t> next_call_id{1};
  p.call_id = next_call_id.fetch_add(1, std::memory_order_relaxed);
  if (uses_420(p)) {  // workspace: contiguous (K, N, 2, chroma_h, chroma_w)
    advise_huge_pages(p.workspace, p.levels * p.n * 2 * g.chroma_h * g.chroma_w * (p.dtype == kFloat64 ? 8 : 4));
  }
  if (simd_forward(p, g)) return;
  dispatch_dtype(p.dtype, [&](auto io, auto compute) {
    using IO = decltype(io);
    using T = decltype(compute);
    if (uses_420(p)) {
      chroma_phase_420<IO, T>(p, g);
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
  const int64_t in_sizes[4] = {p.n, p.c, p.h, p.w};
  prepare_output(p.grad_input, p.grad_in_stride, in_sizes, 4, element_size(p.dtype), p.num_threads);
  if (simd_backward(p, g)) return;
  dispatch_dtype(p.dtype, [&](auto io, auto compute) {
    using IO = decltype(io);
    using T = decltype(compute);
    if constexpr (!std::is_same<IO, uint8_t>::value) {
      if (uses_420(p)) {
        // Decoded chroma (forward phase 1), then the luma phase, then the chroma phase (reads the luma
        // phase's chroma gradients of neighbouring blocks and adds to the pixels it wrote).
        chroma_phase_420<IO, T>(p, g);
        const int64_t cby = g.chroma_h / 8, cbx = g.chroma_w / 8;
        parallel_for(p.n * g.blocks_y * g.blocks_x, p.num_threads, [&](int64_t item) {
          luma_block_420_backward<IO, T>(p, g, block_coord(item, g.blocks_y, g.blocks_x));
        });
        parallel_for(p.n * cby * cbx, p.num_threads,
                     [&](int64_t item) { chroma_block_420_backward<IO, T>(p, g, block_coord(item, cby, cbx)); });
        return;
      }
      parallel_for(p.n * g.blocks_y * g.blocks_x, p.num_threads, [&](int64_t item) {
        roundtrip_block_444_backward<IO, T>(p, block_coord(item, g.blocks_y, g.blocks_x));
      });
    }
  });
}

}  // namespace cpu
}  // namespace nnjpeg
