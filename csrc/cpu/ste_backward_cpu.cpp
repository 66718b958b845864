// CPU driver of the "ste" backward from the saved output (ste_backward.h). Strip: up to kStripBlocks blocks of
// one block row, walked in row-major order: one sweep over its rows for the clamp test and the pass-through
// sum, then the blocks that need their pixels. Whole image rows one after the other, which the hardware
// prefetcher follows (block by block, 3 x 8 row streams per tensor interleave and the loads wait on memory: 3x
// slower on W1). Work item: consecutive strips of about kStripBlocks blocks together (one strip of a
// CIFAR-sized image holds 4). With the forward's pass masks no block needs its pixels: float32 rows dense in
// both gradients take a masked copy row by row on AVX2 and AVX-512 (ste_pass_rows_impl.h), the others the
// strips with select_row. Without them, float32 blocks that need their pixels are queued across the item's strips and
// recomputed a vector of blocks at a time (ste_simd.h) on the current SIMD path. A large float32 gradient is
// written with streaming stores, as the forward's output (streaming_stores.h), which skips the
// read-for-ownership of every gradient line: W1 on 2 AVX2 cores, 56 -> 39 ms (median, A/B in one process).
// Same predicate and arithmetic as the per-block CUDA kernel, so the results are bitwise the same; items are
// independent, so they do not depend on the thread count.
#include <stdint.h>

#include <type_traits>
#if defined(__SSE__)
#include <immintrin.h>
#endif

#include "cpu_isa.h"
#include "output_pages.h"
#include "nnjpeg/dispatch.h"
#include "nnjpeg/kernels.h"
#include "nnjpeg/ste_backward.h"
#include "parallel.h"
#include "ste_simd.h"
#include "streaming_stores.h"

namespace nnjpeg {
namespace cpu {
namespace {

constexpr int64_t kStripBlocks = 64;
// Most values one folded pass sums (ste_backward_strip_summary): 8 rows of 512.
constexpr int64_t kFoldElems = 8 * 512;

// The `count` values from `row` on, fetched into L2: the next gradient row of a strip. A strip's rows are one
// image row apart, so on images wider than a page each row's span starts in another 4 KiB page, where the
// hardware prefetcher starts cold (Intel Sapphire Rapids guest, "ste" backward on the benchmark's photos, 2
// threads, A/B in one process, medians: W1 18.0 -> 16.9 ms, W3 23.5 -> 20.6; W2, whose strips are whole
// images summed as one span, unchanged).
template <typename IO>
inline void prefetch_row(const IO* row, int64_t count) {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int64_t byte = 0; byte < count * int64_t(sizeof(IO)); byte += 64) __builtin_prefetch(bytes + byte, 0, 2);
}

// A folded strip (whole image rows, ste_backward_strip_summary) fetches the gradient rows of channel ch of the
// strip after it (the next block row, or the next image's first) into L2 as it sums its own: its rows are
// too short for the hardware prefetcher to run ahead (Intel Sapphire Rapids guest, the backward alone on W2,
// 2 threads, A/B in one process, medians: 5.65 -> 5.39 ms; with the first level summed without zeroing
// first, 5.36, and W1 16.9 -> 16.4, W3 20.0 -> 19.8). Fetching the next strip's masked output rows as well
// measured no gain (W2 4.55 against 4.57 ms), and summing a masked strip's rows branch-free over all its
// columns, reading every block's output, measured 1.6-2x slower.
template <typename IO>
inline void prefetch_next_strip(const SteBackwardParams& s, int64_t k, int64_t ch, int64_t n, int64_t by) {
  const RoundtripParams& p = s.p;
  const int64_t blocks_y = (p.h + 7) / 8, next_n = by + 1 < blocks_y ? n : n + 1;
  const int64_t next_y = by + 1 < blocks_y ? (by + 1) * 8 : 0;
  if (next_n >= p.n) return;
  const int64_t rows = p.h - next_y < 8 ? p.h - next_y : 8;
  prefetch_row(static_cast<const IO*>(p.grad_output) + offset5(p.out_stride, k, next_n, ch, next_y, 0), rows * p.w);
}

// Orders this thread's streaming stores before what follows (a store to the same lines, the end of the call).
inline void drain_streaming_stores(bool stream) {
#if defined(__SSE__)
  if (stream) _mm_sfence();
#else
  (void)stream;
#endif
}

using RecomputeFn = void (*)(const SteBackwardParams&, const BlockCoord*, int);

struct SimdRecompute {
  int lanes;  // 0: the scalar ste_recompute_block
  RecomputeFn run;
};

// The SIMD recompute of the current CPU path (float32 only; cpu_isa.cpp only selects what this build has).
constexpr int kMaxLanes = 16;

// Blocks that need their pixels, queued for the SIMD recompute across the strips of a work item (a strip of
// small images holds only a few blocks); each block's pass-through sum is stored before it is queued. The
// lanes of one recompute share their tables: one image, unless every image has the same tables.
class RecomputeQueue {
 public:
  RecomputeQueue(const SteBackwardParams& s, const SimdRecompute& simd, bool stream)
      : s_(s), simd_(simd), stream_(stream) {}
  ~RecomputeQueue() { flush(); }
  void add(BlockCoord b) {
    if (count_ > 0 && s_.p.table_stride_image != 0 && blocks_[0].n != b.n) flush();
    blocks_[count_++] = b;
    if (count_ == simd_.lanes) flush();
  }
  void flush() {
    if (count_ > 0) {
      drain_streaming_stores(stream_);  // the recompute overwrites blocks the strips streamed
      simd_.run(s_, blocks_, count_);
    }
    count_ = 0;
  }

 private:
  const SteBackwardParams& s_;
  const SimdRecompute& simd_;
  bool stream_;
  BlockCoord blocks_[kMaxLanes];
  int count_ = 0;
};

SimdRecompute simd_recompute(int dtype) {
  if (dtype != kFloat32) return {0, nullptr};
  switch (current_isa()) {
#if defined(NNJPEG_X86_ISAS)
    case Isa::kAvx512: return {avx512::ste_lanes(), avx512::ste_recompute_blocks};
    case Isa::kAvx2: return {avx2::ste_lanes(), avx2::ste_recompute_blocks};
#endif
#if defined(NNJPEG_SIMD)
    case Isa::kGeneric: return {generic::ste_lanes(), generic::ste_recompute_blocks};
#endif
    default: return {0, nullptr};
  }
}

using PassRowsFn = void (*)(const SteBackwardParams&, int64_t, int64_t, bool);

// The row-by-row backward from the pass masks (ste_pass_rows_impl.h) of the current CPU path (AVX2, AVX-512),
// or null where it does not apply: it takes float32 rows dense in grad_output and grad_input, and no test's
// always_recompute. AMD Zen 5 guest, the backward alone on the benchmark's photos, 2 threads, A/B in one
// process, medians, against the strips with the pass masks (select_row): W2 7.64 -> 3.34 ms, W1 15.9 -> 7.18,
// W3 18.9 -> 10.6; K = 5 levels W2 25.0 -> 9.04, W1 60.9 -> 22.7. That is a memory copy's speed (torch's
// copy_ of the same gradient: 2.6, 8.5 and 12.0 ms); the strips read and wrote through a row buffer, block
// by block.
PassRowsFn pass_rows_for(const SteBackwardParams& s) {
  const RoundtripParams& p = s.p;
  if (p.dtype != kFloat32 || !s.pass_mask || s.always_recompute || p.out_stride[4] != 1 || p.grad_in_stride[3] != 1)
    return nullptr;
  switch (current_isa()) {
#if defined(NNJPEG_X86_ISAS)
    case Isa::kAvx512: return avx512::ste_pass_rows;
    case Isa::kAvx2: return avx2::ste_pass_rows;
#endif
    default: return nullptr;
  }
}

// Values of one work item of the row-by-row backward: about 32 KiB of gradient per level.
constexpr int64_t kPassRowItemElems = 8192;

// kRowLanes.v[bits][c]: -1 where bit c of a pass-mask row is set, else 0 (the lanes of a vector select).
struct RowLanes {
  alignas(32) int32_t v[256][8];
  constexpr RowLanes() : v() {
    for (int bits = 0; bits < 256; ++bits)
      for (int c = 0; c < 8; ++c) v[bits][c] = (bits >> c) & 1 ? -1 : 0;
  }
};
constexpr RowLanes kRowLanes{};

// One row (row r of its blocks) of a strip's pass over `blocks` blocks, `len` dense columns: acc plus the
// gradient where the blocks' pass masks (word) let it through (T(0) plus it when first: no zeroing first).
// Every block the same way, a pass-everywhere one with all lanes set: no branch per block. Intel Sapphire
// Rapids guest, the backward alone on the benchmark's photos, 2 threads, A/B in one process, medians, against
// the summary alone (output reads, recomputes): W2 5.83 -> 4.57 ms, W1 17.4 -> 14.2, W3 21.0 -> 16.4. Testing
// each block's bits in a branch per block measured slower than the output (W2 6.25 against 6.00), and so did
// expanding a whole pass's lanes into an array first (W1 24 against 17).
template <typename IO, typename T, bool kFirst>
inline void select_row(const uint64_t* word, int64_t blocks, int64_t len, int64_t r, const IO* grow, T* acc) {
  for (int64_t b = 0; b < blocks; ++b) {
    const int32_t* lane = kRowLanes.v[(word[b] >> (8 * r)) & 0xffu];
    const int64_t x0 = b * 8, cols = len - x0 < 8 ? len - x0 : 8;
#if defined(__SSE2__)
    if constexpr (std::is_same<IO, float>::value && std::is_same<T, float>::value) {
      if (cols == 8) {  // the gradient ANDed with the lanes: itself or +0, as the select below
        for (int h = 0; h < 8; h += 4) {
          const __m128 g = _mm_and_ps(_mm_loadu_ps(grow + x0 + h), _mm_castsi128_ps(_mm_load_si128(
                                                                       reinterpret_cast<const __m128i*>(lane + h))));
          _mm_storeu_ps(acc + x0 + h, _mm_add_ps(kFirst ? _mm_setzero_ps() : _mm_loadu_ps(acc + x0 + h), g));
        }
        continue;
      }
    }
#endif
    if (cols == 8) {  // fixed trip count: a vector select
      for (int c = 0; c < 8; ++c) acc[x0 + c] = (kFirst ? T(0) : acc[x0 + c]) + (lane[c] ? T(grow[x0 + c]) : T(0));
    } else {
      for (int64_t c = 0; c < cols; ++c)
        acc[x0 + c] = (kFirst ? T(0) : acc[x0 + c]) + (lane[c] ? T(grow[x0 + c]) : T(0));
    }
  }
}

// One strip: blocks [bx0, bx1) of block row `by` of image n, its pixel columns [x0, x0 + len) and the rows
// of its three tensors (both sweeps below).
template <typename IO>
struct Strip {
  const SteBackwardParams& s;
  int64_t n, by, bx0, bx1, x0, len, rows, os, gs, is;
  bool stream;  // grad_input rows take streaming stores (float32, dense 32-byte rows: ste_backward)
  Strip(const SteBackwardParams& s_, int64_t n_, int64_t by_, int64_t bx0_, int64_t bx1_, bool stream_)
      : s(s_), n(n_), by(by_), bx0(bx0_), bx1(bx1_), x0(bx0_ * 8),
        len((bx1_ * 8 < s_.p.w ? bx1_ * 8 : s_.p.w) - bx0_ * 8), rows(block_rows(s_.p, BlockCoord{n_, by_, bx0_})),
        os(s_.output_stride[4]), gs(s_.p.out_stride[4]), is(s_.p.grad_in_stride[3]), stream(stream_) {}
  const IO* output_row(int64_t k, int64_t ch, int64_t y) const {
    return static_cast<const IO*>(s.output) + offset5(s.output_stride, k, n, ch, y, x0);
  }
  const IO* grad_row(int64_t k, int64_t ch, int64_t y) const {
    return static_cast<const IO*>(s.p.grad_output) + offset5(s.p.out_stride, k, n, ch, y, x0);
  }
  IO* grad_in_row(int64_t ch, int64_t y) const {
    return static_cast<IO*>(s.p.grad_input) + offset4(s.p.grad_in_stride, n, ch, y, x0);
  }
  template <typename T>
  void store(const T* acc, int64_t ch, int64_t y, int64_t count) const {  // count: len, or rows * len (folded)
    IO* dst = grad_in_row(ch, y);
#if defined(__SSE__)
    if constexpr (std::is_same<IO, float>::value && std::is_same<T, float>::value) {
      if (stream) {  // len is a multiple of 8 and dst 32-byte aligned (streamable_float32)
        for (int64_t x = 0; x < count; x += 4) _mm_stream_ps(dst + x, _mm_loadu_ps(acc + x));
        return;
      }
    }
#endif
    if (is == 1) {
      for (int64_t x = 0; x < count; ++x) dst[x] = IO(acc[x]);
    } else {
      for (int64_t x = 0; x < count; ++x) dst[x * is] = IO(acc[x]);
    }
  }
};

// A block that needs its decoded pixels: queued for the SIMD recompute (float32), or recomputed here.
template <typename IO, typename T>
void recompute(const SteBackwardParams& s, RecomputeQueue* queue, BlockCoord b, bool stream) {
  if (queue) {
    queue->add(b);
    return;
  }
  drain_streaming_stores(stream);
  ste_recompute_block<IO, T>(s, b);
}

// The strip without a clamp summary. One sweep over its rows: the clamp test (one flag per pixel column,
// ORed over the levels, channels and rows) and the pass-through sum over the levels (ste_pass_row's
// arithmetic: T(0) plus each level in increasing order), stored for every block; blocks whose flag is set
// are then overwritten by the recompute. Long contiguous loops, which the compiler vectorizes.
template <typename IO, typename T>
void ste_backward_strip(const SteBackwardParams& s, RecomputeQueue* queue, int64_t n, int64_t by, int64_t bx0,
                        int64_t bx1, bool stream) {
  const RoundtripParams& p = s.p;
  const Strip<IO> st(s, n, by, bx0, bx1, stream);
  const int64_t len = st.len, os = st.os, gs = st.gs;
  int32_t column[kStripBlocks * 8] = {};  // 32-bit flags: the same lane width as float, no packing
  T acc[kStripBlocks * 8];
  for (int64_t ch = 0; ch < p.c; ++ch)
    for (int64_t r = 0; r < st.rows; ++r) {
      const int64_t y = by * 8 + r;
      if (p.levels == 1 && os == 1 && gs == 1 && st.is == 1 && !stream) {  // the common case in one loop
        const IO* orow = st.output_row(0, ch, y);
        const IO* grow = st.grad_row(0, ch, y);
        IO* dst = st.grad_in_row(ch, y);
        int32_t row_needs = 0;  // most rows lie strictly inside (0, 1): a reduction, no per-column stores
        for (int64_t x = 0; x < len; ++x) row_needs |= int32_t(output_needs_pixel(orow[x]));
        if (row_needs)
          for (int64_t x = 0; x < len; ++x) column[x] |= int32_t(output_needs_pixel(orow[x]));
        for (int64_t x = 0; x < len; ++x) dst[x] = IO(T(0) + T(grow[x]));
        continue;
      }
      for (int64_t x = 0; x < len; ++x) acc[x] = T(0);
      for (int64_t k = 0; k < p.levels; ++k) {
        const IO* orow = st.output_row(k, ch, y);
        const IO* grow = st.grad_row(k, ch, y);
        if (os == 1) {
          for (int64_t x = 0; x < len; ++x) column[x] |= int32_t(output_needs_pixel(orow[x]));
        } else {
          for (int64_t x = 0; x < len; ++x) column[x] |= int32_t(output_needs_pixel(orow[x * os]));
        }
        if (gs == 1) {
          for (int64_t x = 0; x < len; ++x) acc[x] = acc[x] + T(grow[x]);
        } else {
          for (int64_t x = 0; x < len; ++x) acc[x] = acc[x] + T(grow[x * gs]);
        }
      }
      st.store(acc, ch, y, len);
    }
  for (int64_t bx = bx0; bx < bx1; ++bx) {
    int any = s.always_recompute ? 1 : 0;
    for (int64_t x = (bx - bx0) * 8; x < (bx - bx0) * 8 + 8 && x < len; ++x) any |= column[x];
    if (any) recompute<IO, T>(s, queue, BlockCoord{n, by, bx}, st.stream);
  }
}

// The strip with the forward's clamp summary (ste_backward.h): per block and level the gradient passes
// everywhere (the output is not read) or where the output is strictly inside (0, 1); blocks with a level that
// needs the decoded pixels are recomputed. ste_masked_row's arithmetic: T(0), then each level's term.
template <typename IO, typename T>
void ste_backward_strip_summary(const SteBackwardParams& s, RecomputeQueue* queue, int64_t n, int64_t by,
                                int64_t bx0, int64_t bx1, bool stream) {
  const RoundtripParams& p = s.p;
  const Strip<IO> st(s, n, by, bx0, bx1, stream);
  const int64_t len = st.len, os = st.os, gs = st.gs, blocks = bx1 - bx0;
  // The mask sources of the strip's blocks, read once per strip rather than once per row: every level's
  // when there are at most kHoistedLevels, else one level's at a time (once per row).
  constexpr int64_t kHoistedLevels = 8;
  const bool hoist = p.levels <= kHoistedLevels;
  uint8_t sources[kHoistedLevels][kStripBlocks];
  bool masked[kHoistedLevels];
  auto read_sources = [&](int64_t k, uint8_t* source) {
    bool any = false;
    for (int64_t b = 0; b < blocks; ++b) {
      source[b] = uint8_t(ste_mask_source(s, BlockCoord{n, by, bx0 + b}, k));
      any = any || source[b] == kMaskFromOutput || source[b] == kMaskFromPassMask;
    }
    return any;
  };
  for (int64_t k = 0; hoist && k < p.levels; ++k) masked[k] = read_sources(k, sources[k]);
  // A strip of whole rows that lie back to back in all three tensors (dense, width a multiple of 8) is summed
  // as one span of its rows per channel rather than row by row: the same sums, fewer and longer loops (a
  // CIFAR-sized image has rows of 32 values; W2 on 2 AVX2 cores: 19 -> 17 ms, medians, A/B in one process).
  const bool fold = bx0 == 0 && len == blocks * 8 && len == p.w && os == 1 && gs == 1 && st.is == 1 &&
                    s.output_stride[3] == len && p.out_stride[3] == len && p.grad_in_stride[2] == len &&
                    st.rows * len <= kFoldElems;
  const int64_t pass_rows = fold ? st.rows : 1, span = pass_rows * len;
  T acc[kFoldElems];
  for (int64_t ch = 0; ch < p.c; ++ch)
    for (int64_t r0 = 0; r0 < st.rows; r0 += pass_rows) {
      const int64_t y = by * 8 + r0;
      for (int64_t k = 0; k < p.levels; ++k) {
        const IO* orow = st.output_row(k, ch, y);
        const IO* grow = st.grad_row(k, ch, y);
        const uint8_t* source = sources[hoist ? k : 0];
        const bool row_masked = hoist ? masked[k] : read_sources(k, sources[0]);
        const uint64_t* words = s.pass_mask ? s.pass_mask + pass_mask_index(p, k, n, ch, by, bx0) : nullptr;
        if (gs == 1 && (!row_masked || words)) {  // a dense pass that reads no output: the next one fetched
          if (r0 + pass_rows < st.rows) prefetch_row(st.grad_row(k, ch, y + pass_rows), span);
          else if (fold) prefetch_next_strip<IO>(s, k, ch, n, by);
        }
        if (!row_masked && gs == 1) {  // the whole pass goes through: one contiguous loop, the output not read
          if (k == 0) {  // T(0) + the first level, without zeroing acc first
            for (int64_t x = 0; x < span; ++x) acc[x] = T(0) + T(grow[x]);
          } else {
            for (int64_t x = 0; x < span; ++x) acc[x] = acc[x] + T(grow[x]);
          }
          continue;
        }
        if (words && gs == 1) {  // the pass masks: a select per row of 8, no branch per block
          uint64_t word[kStripBlocks];
          for (int64_t b = 0; b < blocks; ++b) word[b] = source[b] == kPassEverywhere ? ~uint64_t(0) : words[b];
          for (int64_t rr = 0; rr < pass_rows; ++rr) {
            if (k == 0)
              select_row<IO, T, true>(word, blocks, len, r0 + rr, grow + rr * len, acc + rr * len);
            else
              select_row<IO, T, false>(word, blocks, len, r0 + rr, grow + rr * len, acc + rr * len);
          }
          continue;
        }
        if (k == 0)
          for (int64_t x = 0; x < span; ++x) acc[x] = T(0);
        for (int64_t rr = 0; rr < pass_rows; ++rr) {
          // A masked block reads 8 values of each output row, too sparse for the hardware prefetcher: its next
          // row is fetched ahead (AMD EPYC AVX2 guest, 2 threads, medians: W1 34-39 -> 27-30 ms, W3 57-68 -> 49-58).
          const IO* next_orow = r0 + rr + 1 < st.rows ? st.output_row(k, ch, y + rr + 1) : nullptr;
          if (next_orow && gs == 1) prefetch_row(st.grad_row(k, ch, y + rr + 1), len);
          for (int64_t b = 0; b < blocks; ++b) {
            const int64_t xb = rr * len + b * 8, xe = b * 8 + 8 < len ? xb + 8 : rr * len + len;
            if (next_orow && source[b] == kMaskFromOutput) __builtin_prefetch(next_orow + b * 8 * os);
            if (source[b] == kMaskFromOutput && os == 1 && gs == 1) {
              for (int64_t x = xb; x < xe; ++x) {  // both loaded unconditionally: a vector select
                const T g = T(grow[x]);
                acc[x] = acc[x] + (output_needs_pixel(orow[x]) ? T(0) : g);
              }
            } else if (source[b] == kMaskFromOutput) {
              for (int64_t x = xb; x < xe; ++x)
                acc[x] = acc[x] + (output_needs_pixel(orow[x * os]) ? T(0) : T(grow[x * gs]));
            } else if (source[b] == kMaskFromPassMask) {  // strided gradient rows
              for (int64_t x = xb; x < xe; ++x)
                acc[x] = acc[x] + (pass_mask_bit(words[b], r0 + rr, int(x - xb)) ? T(grow[x * gs]) : T(0));
            } else {
              for (int64_t x = xb; x < xe; ++x) acc[x] = acc[x] + T(grow[x * gs]);
            }
          }
        }
      }
      st.store(acc, ch, y, span);
    }
  for (int64_t bx = bx0; bx < bx1; ++bx) {
    const BlockCoord b{n, by, bx};
    if (s.always_recompute || ste_block_needs_pixels<IO>(s, b)) recompute<IO, T>(s, queue, b, st.stream);
  }
}

}  // namespace

bool streams_grad_input(const RoundtripParams& p) {
  const int64_t in_sizes[4] = {p.n, p.c, p.h, p.w};
  return streamable_float32(p.dtype, p.grad_input, p.grad_in_stride, in_sizes, 4);
}

void ste_backward(const SteBackwardParams& s) {
  const RoundtripParams& p = s.p;
  const int64_t in_sizes[4] = {p.n, p.c, p.h, p.w};
  prepare_output(p.grad_input, p.grad_in_stride, in_sizes, 4, element_size(p.dtype), p.num_threads);
  const bool stream = streams_grad_input(p);
  if (const PassRowsFn pass_rows = pass_rows_for(s)) {
    const int64_t rows = p.n * p.c * p.h, per_item = p.w < kPassRowItemElems ? kPassRowItemElems / p.w : 1;
    parallel_for((rows + per_item - 1) / per_item, p.num_threads, [&](int64_t item) {
      pass_rows(s, item * per_item, (item + 1) * per_item < rows ? (item + 1) * per_item : rows, stream);
      drain_streaming_stores(stream);  // visible to the caller when the call returns
    });
    return;
  }
  const Geometry g = geometry(p);
  const int64_t strips_x = (g.blocks_x + kStripBlocks - 1) / kStripBlocks;
  const int64_t strips = p.n * g.blocks_y * strips_x;
  // Work item: a few consecutive strips (about kStripBlocks blocks), so that small images fill the lanes.
  const int64_t strip_blocks = g.blocks_x < kStripBlocks ? g.blocks_x : kStripBlocks;
  const int64_t per_item = kStripBlocks / strip_blocks;
  SimdRecompute simd = simd_recompute(p.dtype);
  if (simd.lanes > kMaxLanes) simd = {0, nullptr};
  dispatch_dtype(p.dtype, [&](auto io, auto compute) {
    using IO = decltype(io);
    using T = decltype(compute);
    if constexpr (!std::is_same<IO, uint8_t>::value) {  // uint8 is rejected by the binding
      auto run_item = [&](int64_t item) {
        RecomputeQueue queue(s, simd, stream);  // its destructor runs the item's last recompute
        RecomputeQueue* q = simd.lanes > 0 ? &queue : nullptr;
        for (int64_t i = item * per_item; i < strips && i < (item + 1) * per_item; ++i) {
          const BlockCoord strip = block_coord(i, g.blocks_y, strips_x);
          const int64_t bx0 = strip.bx * kStripBlocks;
          const int64_t bx1 = bx0 + kStripBlocks < g.blocks_x ? bx0 + kStripBlocks : g.blocks_x;
          if (s.clamp_summary) ste_backward_strip_summary<IO, T>(s, q, strip.n, strip.by, bx0, bx1, stream);
          else ste_backward_strip<IO, T>(s, q, strip.n, strip.by, bx0, bx1, stream);
        }
      };
      parallel_for((strips + per_item - 1) / per_item, p.num_threads, [&](int64_t item) {
        run_item(item);
        drain_streaming_stores(stream);  // visible to the caller when the call returns
      });
    }
  });
}

}  // namespace cpu
}  // namespace nnjpeg
