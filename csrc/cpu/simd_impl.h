// The CPU SIMD path, compiled once per instruction set: simd_<isa>.cpp defines NNJPEG_PRIVATE_COPY and
// NNJPEG_SIMD_ISA (and NNJPEG_SIMD_LANES, 8 or 16), then includes this file. Groups of up to kLanes blocks of one image run through the shared
// value-level block math of roundtrip_block.h with T = Vec (one block per lane), so each lane is bitwise
// equal to the scalar kernel. Blocks wholly inside the image load and store whole rows of 8 pixels and
// transpose them into lanes; blocks at the bottom/right edge go through the scalar pixel accessors
// (edge replication, padding never stored), lane by lane. The 4:2:0 forward is in simd_420.h.
#pragma once

#ifndef NNJPEG_PRIVATE_COPY
#error "simd_impl.h belongs to the ISA translation units (simd_*.cpp), which define NNJPEG_PRIVATE_COPY"
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>
#include <vector>
#if defined(__SSE__)
#include <immintrin.h>
#endif

#include "nnjpeg/roundtrip_block.h"
#include "simd_kernels.h"

namespace nnjpeg {
namespace cpu {
namespace NNJPEG_SIMD_ISA {
namespace {

#include "simd_vec.h"
#include "divisor_cache.h"

// The blocks of one group: lane j holds block (by[j], bx[j]) of image n[j]; lanes past `count` repeat the
// last block (computed, never stored). Its lanes share the tables of image n[0] (simd_kernels.h).
struct Group {
  int64_t n[kLanes], by[kLanes], bx[kLanes];
  int count;
  bool interior;  // every block lies wholly inside its image
};

// `pixels`: the side of the square of pixels a block covers (8; 16 for 4:2:0 chroma blocks).
Group make_group(const RoundtripParams& p, const GroupLayout& l, int64_t item, int pixels = 8) {
  Group g;
  // Blocks numbered over the batch: [first, limit) is the group's image (or the whole batch).
  int64_t first, limit;
  if (l.spans_images) {
    first = item * kLanes;
    limit = p.n * l.blocks_per_image;
  } else {
    const int64_t n = item / l.groups_per_image;
    first = n * l.blocks_per_image + (item % l.groups_per_image) * kLanes;
    limit = (n + 1) * l.blocks_per_image;
  }
  g.count = int(limit - first < kLanes ? limit - first : kLanes);
  g.interior = true;
  for (int j = 0; j < kLanes; ++j) {
    const int64_t b = first + (j < g.count ? j : g.count - 1), local = b % l.blocks_per_image;
    g.n[j] = b / l.blocks_per_image;
    g.by[j] = local / l.blocks_x;
    g.bx[j] = local % l.blocks_x;
    g.interior = g.interior && (g.by[j] + 1) * pixels <= p.h && (g.bx[j] + 1) * pixels <= p.w;
  }
  return g;
}

// Runs fn(group, next) over groups [begin, end) in order; `next` is the group after each one (null past the
// layout's last), whose input rows the group prefetches while it computes.
template <typename Fn>
void for_each_group(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end, int pixels,
                    const Fn& fn) {
  if (begin >= end) return;
  Group g = make_group(p, l, begin, pixels), next;
  for (int64_t item = begin; item < end; ++item) {
    const bool has_next = item + 1 < l.groups;
    if (has_next) next = make_group(p, l, item + 1, pixels);
    fn(g, has_next ? &next : nullptr);
    if (has_next) g = next;
  }
}

// Running min / max / NaN of loaded float pixels (tracked per lane, reduced into an InputRange per group).
// Lanes past a group's count repeat its last block: folding them in changes nothing.
struct RowRange {
  vf lo = vf{} + __builtin_inff(), hi = vf{} - __builtin_inff();
  vi nan = vi{};
  void add(vf r) {
    lo = r < lo ? r : lo;  // NaN compares false: tracked by `nan` instead
    hi = r > hi ? r : hi;
    nan |= r != r;
  }
  void add(float v) { add(broadcast(v)); }
  void fold_into(InputRange& out) const {
    for (int i = 0; i < kLanes; ++i) {
      out.lo = lo[i] < out.lo ? lo[i] : out.lo;
      out.hi = hi[i] > out.hi ? hi[i] : out.hi;
      out.nan = out.nan || nan[i] != 0;
    }
  }
};

// Top-left element of each lane's 8x8 block (pixels `pixels` apart per block: 8, or 16 for 4:2:0
// macro-blocks): `plane` is that plane of image 0, sn the image stride, sy the row and sx the element stride.
template <typename IO>
void lane_bases(IO* plane, const Group& g, int64_t sn, int64_t sy, int64_t sx, int pixels, IO** base) {
  for (int j = 0; j < kLanes; ++j) base[j] = plane + g.n[j] * sn + g.by[j] * pixels * sy + g.bx[j] * pixels * sx;
}

// Row r of the group after this one, `after_last` being where row r of this group's last block ends: the
// blocks that follow in the same block row (past a block row's end, the prefetch is wasted, never wrong).
// The fallback where the next group is not known or crosses an image edge; prefetch_lane_rows below fetches
// exactly the next group's rows. Into L2 (hint 2): a group's compute is long enough for L1 to lose them.
// With 3 x 8 row streams per group the hardware prefetcher falls behind: AMD EPYC AVX2 guest, 2 threads,
// W1 float32 55 -> 51 ms, W3 90 -> 64 (this fallback alone); Intel AVX-512 guest, W1 float32 36.5 -> 31.8 ms,
// W3 61.6 -> 53.7; the exact rows then W1 36.2 -> 34.5, W2 15.2 -> 12.7 (a 32x32 image is one group, so
// "after the last block" was its own next pixel row). Medians, A/B in one process.
template <typename IO>
inline void prefetch_next_group_row(const IO* after_last) {
  const char* row = reinterpret_cast<const char*>(after_last);
  for (int byte = 0; byte < kLanes * 8 * int(sizeof(IO)); byte += 64) __builtin_prefetch(row + byte, 0, 2);
}

// Row `offset` (elements) of each lane's block in the group after this one, `pixels` elements wide, from
// its lane bases: fetched into L2 while this group computes (4:2:0 chroma phase, Intel AVX-512 guest, 2
// threads: W1 float32 46.7 -> 40.1 ms, W2 21.3 -> 19.0, W3 60.0 -> 53.6; uint8 unchanged).
template <typename IO>
inline void prefetch_lane_rows(const IO* const* next_base, int64_t offset, int pixels) {
  for (int j = 0; j < kLanes; ++j) {
    const char* row = reinterpret_cast<const char*>(next_base[j] + offset);
    __builtin_prefetch(row, 0, 2);
    __builtin_prefetch(row + pixels * int(sizeof(IO)) - 1, 0, 2);  // the same line when the row does not cross one
  }
}

// Pixels of the group on the 0..255 scale (channels [0, p.c)); with `range` (float input), every pixel of
// the image that the group covers is folded into it.
template <typename IO>
void load_group(const RoundtripParams& p, const Group& g, Vec (*px)[64], InputRange* range,
                const Group* next = nullptr) {
  const IO* in = static_cast<const IO*>(p.input);
  const int64_t* s = p.in_stride;
  RowRange seen;
  const bool exact = next != nullptr && next->interior;
  if (g.interior) {
    for (int ch = 0; ch < p.c; ++ch) {
      const IO* base[kLanes];
      const IO* next_base[kLanes];
      lane_bases(in + ch * s[1], g, s[0], s[2], s[3], 8, base);
      if (exact) lane_bases(in + ch * s[1], *next, s[0], s[2], s[3], 8, next_base);
      for (int r = 0; r < 8; ++r) {
        Vec* row = px[ch] + r * 8;
        if (s[3] == 1) {
          if (exact) prefetch_lane_rows(next_base, r * s[2], 8);
          else prefetch_next_group_row(base[kLanes - 1] + r * s[2] + 8);
        }
        load_lane_rows(base, r * s[2], s[3], row);
        if (range)
          for (int c = 0; c < 8; ++c) seen.add(row[c].v);
        for (int c = 0; c < 8; ++c) row[c] = from_pixel(row[c], in);
      }
    }
  } else {
    for (int j = 0; j < kLanes; ++j) {
      float lane[3][64];
      load_block_255<IO, float>(p, g.n[j], g.by[j], g.bx[j], lane);
      for (int ch = 0; ch < p.c; ++ch)
        for (int i = 0; i < 64; ++i) px[ch][i].v[j] = lane[ch][i];
    }
    if (range) {
      for (int j = 0; j < g.count; ++j)
        for (int64_t y = g.by[j] * 8; y < g.by[j] * 8 + 8 && y < p.h; ++y)
          for (int64_t x = g.bx[j] * 8; x < g.bx[j] * 8 + 8 && x < p.w; ++x)
            for (int ch = 0; ch < p.c; ++ch) seen.add(float(in[offset4(s, g.n[j], ch, y, x)]));
    }
  }
  if (range) seen.fold_into(*range);
}

// Running clamp summary of an interior group's lanes (params.h) at one level, from each decoded pixel px
// (0..255 scale, before the clamp), its clamp x = sanitize_255(px) and its stored value v: per channel, the
// pixels that pass_unclamped lets through (x == px, or px NaN: px inside [0, 255]; bit r * 8 + c, rows 0-3 in
// low, 4-7 in high), and over all of them the least and the greatest v. A lane has kSomeClamped where some
// pixel does not pass, and kSomeOnBound where that least v is 0 or that greatest v is 1 (every v lies in
// [0, 1]): clamp_summary_bits of every pixel, without testing each pixel for each bit. A row's bits gather in
// a register (constant bits, the columns unrolled) before they go into its word: ORed into the word pixel by
// pixel, they made a chain of loads and stores through memory (the channel index is not constant). With
// AVX-512, one compare into a mask register and masked or / min / max per pixel vector. AMD Zen 5 guest, the
// "ste" forward (nnjpeg::roundtrip_ste), 2 threads, A/B in one process, medians, against the per-pixel tests
// on vectors into the words: W1 float32 18.2 -> 15.7 ms, W2 6.82 -> 6.49, W3 24.1 -> 19.9; the plain
// forward (no summary) W1 13.0, W2 4.5.
struct LaneSummary {
  vi low[3] = {vi{}, vi{}, vi{}}, high[3] = {vi{}, vi{}, vi{}};
  vf least = vf{} + __builtin_inff(), greatest = vf{} - __builtin_inff();
  // Row r of channel ch: the 8 pixels px, their clamps x and their stored values v.
  void add_row(const Vec* px, const Vec* x, const Vec* v, int ch, int r) {
    vi bits = vi{};
    for (int c = 0; c < 8; ++c) {
#if NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)
      const __mmask16 pass = _mm512_cmp_ps_mask(__m512(x[c].v), __m512(px[c].v), _CMP_EQ_UQ);  // NaN: true
      bits = vi(_mm512_mask_or_epi32(__m512i(bits), pass, __m512i(bits), _mm512_set1_epi32(1 << c)));
      least = vf(_mm512_mask_min_ps(__m512(least), pass, __m512(least), __m512(v[c].v)));
      greatest = vf(_mm512_mask_max_ps(__m512(greatest), pass, __m512(greatest), __m512(v[c].v)));
#else
#if NNJPEG_SIMD_LANES == 8 && defined(__AVX__)
      const vi out = vi(_mm256_castps_si256(_mm256_cmp_ps(__m256(x[c].v), __m256(px[c].v), _CMP_NEQ_OQ)));
#else
      (void)x;
      const vi out = (px[c].v < 0.0f) | (px[c].v > 255.0f);
#endif
      bits |= ~out & (1 << c);
      const vf kept = out ? broadcast(0.5f) : v[c].v;  // 0.5: neither bound
      least = kept < least ? kept : least;
      greatest = kept > greatest ? kept : greatest;
#endif
    }
    vi& word = r < 4 ? low[ch] : high[ch];
    word |= bits << (8 * (r & 3));
  }
  uint64_t pass_word(int ch, int j) const {
    return uint64_t(uint32_t(low[ch][j])) | uint64_t(uint32_t(high[ch][j])) << 32;
  }
  uint64_t clamped_pixels(int ch, int j) const { return ~pass_word(ch, j); }
  // Each lane's clamp-summary bits.
  vi bits(int channels) const {
    vi all = vi{} - 1;
    for (int ch = 0; ch < channels; ++ch) all &= low[ch] & high[ch];
    const vi clamped = all != -1, on_bound = (least == 0.0f) | (greatest == 1.0f);
    return (clamped & int(kSomeClamped)) | (on_bound & int(kSomeOnBound));
  }
  // bits() of lanes j < count into dst[j].
  void store_bits(uint8_t* dst, int count, int channels) const {
    const vi bits = this->bits(channels);
#if NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)
    _mm512_mask_cvtepi32_storeu_epi8(dst, __mmask16((1u << count) - 1), __m512i(bits));
#else
    for (int j = 0; j < count; ++j) dst[j] = uint8_t(bits[j]);
#endif
  }
  // pass_word(ch, j) of lanes j < count into dst[j].
  void store_pass_words(int ch, uint64_t* dst, int count) const {
#if NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)
    // Words of lanes 0-7 and 8-15: low and high halves interleaved (index 16 + i: lane i of high).
    const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i second = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512i lo = __m512i(low[ch]), hi = __m512i(high[ch]);
    const __mmask8 lanes_0_7 = __mmask8((1u << (count < 8 ? count : 8)) - 1);
    _mm512_mask_storeu_epi64(dst, lanes_0_7, _mm512_permutex2var_epi32(lo, first, hi));
    if (count > 8)
      _mm512_mask_storeu_epi64(dst + 8, __mmask8((1u << (count - 8)) - 1), _mm512_permutex2var_epi32(lo, second, hi));
#else
    for (int j = 0; j < count; ++j) dst[j] = pass_word(ch, j);
#endif
  }
};

// store_group of an interior group; kSummarize: with the clamp summaries (and pass masks). Its own
// instantiation, so that the plain store keeps no summary state in registers.
template <typename IO, bool kSummarize>
void store_interior(const RoundtripParams& p, const Group& g, int64_t k, Vec (*px)[64]) {
  IO* out = static_cast<IO*>(p.output);
  const int64_t* s = p.out_stride;
  LaneSummary summary;
  for (int ch = 0; ch < p.c; ++ch) {
    IO* plane = out + k * s[0] + ch * s[2];  // of image 0
    IO* base[kLanes];
    lane_bases(plane, g, s[1], s[3], s[4], 8, base);
    for (int r = 0; r < 8; ++r) {
      Vec cols[8];
      if constexpr (kSummarize) {
        Vec x[8];
        for (int c = 0; c < 8; ++c) {
          x[c] = sanitize_255(px[ch][r * 8 + c]);
          cols[c] = sanitized_to_pixel(x[c], plane);
        }
        summary.add_row(px[ch] + r * 8, x, cols, ch, r);
      } else {
        for (int c = 0; c < 8; ++c) cols[c] = to_pixel(px[ch][r * 8 + c], plane);
      }
      store_lane_rows(cols, base, r * s[3], s[4], g.count, p.stream_output);
    }
  }
  if constexpr (!kSummarize) return;
  if (g.n[0] == g.n[g.count - 1]) {
    // Lanes j < count hold blocks first + j of one image (make_group): their summary bytes, and each
    // channel's pass-mask words, lie back to back, stored as vectors (against store_clamp_summary per lane,
    // AMD Zen 5 guest, A/B as above: W2 5.16 -> 4.95 ms, W1 14.46 -> 14.10).
    const int64_t n = g.n[0], by = g.by[0], bx = g.bx[0];
    summary.store_bits(p.clamp_summary + clamp_summary_index(p, k, n, by, bx), g.count, int(p.c));
    for (int ch = 0; p.pass_mask && ch < p.c; ++ch)
      summary.store_pass_words(ch, p.pass_mask + pass_mask_index(p, k, n, ch, by, bx), g.count);
    return;
  }
  const vi bits = summary.bits(int(p.c));
  for (int j = 0; j < g.count; ++j) {
    const uint64_t clamped[3] = {summary.clamped_pixels(0, j), summary.clamped_pixels(1, j),
                                 summary.clamped_pixels(2, j)};
    store_clamp_summary(p, k, BlockCoord{g.n[j], g.by[j], g.bx[j]}, bits[j], clamped);
  }
}

// Decoded pixels (0..255, not clamped) of level k -> the output, padding skipped; with p.clamp_summary (float
// output), the group's clamp summaries at this level too, and with p.pass_mask its pass masks.
template <typename IO>
void store_group(const RoundtripParams& p, const Group& g, int64_t k, Vec (*px)[64]) {
  IO* out = static_cast<IO*>(p.output);
  const int64_t* s = p.out_stride;
  const bool summarize = p.clamp_summary != nullptr && !std::is_same<IO, uint8_t>::value;
  if (!g.interior) {
    for (int j = 0; j < g.count; ++j) {
      int summary = 0;
      uint64_t clamped[3] = {0, 0, 0};  // bit r * 8 + c: that pixel clamped
      for (int ch = 0; ch < p.c; ++ch) {
        IO* plane = out + k * s[0] + g.n[j] * s[1] + ch * s[2];
        for (int r = 0; r < 8 && g.by[j] * 8 + r < p.h; ++r) {
          const int64_t y = g.by[j] * 8 + r, x0 = g.bx[j] * 8;
          for (int c = 0; c < 8 && x0 + c < p.w; ++c) {
            IO v;
            store_255(px[ch][r * 8 + c][j], v);
            plane[y * s[3] + (x0 + c) * s[4]] = v;
            const int bits = clamp_summary_bits(px[ch][r * 8 + c][j], v);
            summary |= bits;
            if (bits & kSomeClamped) clamped[ch] |= uint64_t(1) << (r * 8 + c);
          }
        }
      }
      if (summarize) store_clamp_summary(p, k, BlockCoord{g.n[j], g.by[j], g.bx[j]}, summary, clamped);
    }
    return;
  }
  if (summarize) store_interior<IO, true>(p, g, k, px);
  else store_interior<IO, false>(p, g, k, px);
}

// decode_block of the SIMD forward. Rounding half to even, a column whose AC coefficients all round to 0 in
// every lane (|F| <= D / 2: the quotient is at most 1/2) skips their quantization and its column pass: its 8
// outputs are its DC term's. Only the signs of zero values can differ from decode_block (a quotient of -0.3
// gives -0, and x + (+0) is x): every later step (row pass, colour transform, 4:2:0 upsampling) adds and
// multiplies, which keeps any difference a zero's sign, and the level shift (+128) or the clamp's 0 ends it.
// The pixels are bitwise decode_block's. Chroma's coarse steps make most chroma columns such at every
// quality (the benchmark's photos in groups of 16 blocks, quality 75: columns 3-7 in 87-100% of groups,
// luma's columns 5-7 in 33-67%). Intel Sapphire Rapids guest, 2 threads, A/B in one process, medians,
// float32: W1 22.05 -> 21.48 ms, W2 6.87 -> 6.79, W3 28.8 -> 28.2; roundtrip_multi K = 5 (qualities 90 to 10)
// W1 59.1 -> 54.9, W2 21.3 -> 20.0, W3 77.2 -> 71.3; outputs bitwise equal. Testing only the columns most
// often such (luma from 4, chroma from 2) measured the same. A column whose rows 4-7 alone all round to 0 (luma's
// middle columns, chroma's first three: 36-92% of groups at quality 75) quantizes rows 0-3 only: W1 K = 5
// 64.0 -> 62.8 ms, W3 81.3 -> 79.9, one level 0-1%. Such columns, and the row pass where columns 4-7 are
// all 0 (chroma: 89-96% of groups at quality 75), take idct8_scaled_first4 (dct.h): W1 K = 5 60.6 -> 59.6,
// W3 78.4 -> 77.2.
inline void decode_block_simd(const Vec* coef, const QuantDivisors<float>& q, int rounding, Vec* dst) {
  if (rounding != kRoundHalfEven) {
    decode_block(coef, q, rounding, dst);
    return;
  }
  bool right_zero = true;  // columns 4-7 all round to 0, DC included: the row pass has 4 inputs
  for (int c = 0; c < 8; ++c) {
    vi low = vi{}, high = vi{};  // some lane's term of rows 1-3, 4-7 does not round to 0
    for (int u = 1; u < 4; ++u) low |= abs_lanes(coef[u * 8 + c].v) > broadcast(q.half_divisor[u * 8 + c]);
    for (int u = 4; u < 8; ++u) high |= abs_lanes(coef[u * 8 + c].v) > broadcast(q.half_divisor[u * 8 + c]);
    if (!any_lane(low | high)) {
      if (c >= 4) right_zero = right_zero && !any_lane(abs_lanes(coef[c].v) > broadcast(q.half_divisor[c]));
      const Vec dc = dequantized_at(coef, q, c, rounding);
      for (int u = 0; u < 8; ++u) dst[u * 8 + c] = dc;
      continue;
    }
    if (c >= 4) right_zero = false;
    Vec column[8];
    if (any_lane(high)) {
      for (int u = 0; u < 8; ++u) column[u] = dequantized_at(coef, q, u * 8 + c, rounding);
      idct8_scaled(column, 1);
    } else {  // rows 4-7 all round to 0: their quotients and terms left out
      for (int u = 0; u < 4; ++u) column[u] = dequantized_at(coef, q, u * 8 + c, rounding);
      idct8_scaled_first4(column, 1);
    }
    for (int u = 0; u < 8; ++u) dst[u * 8 + c] = column[u];
  }
  for (int r = 0; r < 8; ++r) {
    if (right_zero) idct8_scaled_first4(dst + 8 * r, 1);
    else idct8_scaled(dst + 8 * r, 1);
  }
}

// decode_pixels with decode_block_simd.
inline void decode_group(bool ycc, int channels, const Vec (*coef)[64], const QuantDivisors<float>& luma,
                         const QuantDivisors<float>& chroma, int rounding, Vec (*px)[64]) {
  for (int ch = 0; ch < channels; ++ch) decode_block_simd(coef[ch], ycc && ch > 0 ? chroma : luma, rounding, px[ch]);
  shifted_to_pixels(ycc, channels, px);
}

template <typename IO>
void forward_group(const RoundtripParams& p, const Group& g, const Group* next, InputRange* range) {
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  Vec coef[3][64];
  load_group<IO>(p, g, coef, range, next);
  encode_block(ycc, channels, coef);
  DivisorCache& divisors = thread_divisor_cache();
  for (int64_t k = 0; k < p.levels; ++k) {
    Vec px[3][64];
    const QuantDivisors<float>& luma = divisors(table_for(p, k, g.n[0], false), p.call_id);
    decode_group(ycc, channels, coef, luma, divisors(table_for(p, k, g.n[0], true), p.call_id), p.rounding, px);
    store_group<IO>(p, g, k, px);
  }
}

// Gradient wrt the decoded pixels of level k (zero in the padding), masked where the output was clamped.
void load_grad_out(const RoundtripParams& p, const Group& g, int64_t k, Vec (*px)[64], Vec (*gr)[64]) {
  const float* gout = static_cast<const float*>(p.grad_output);
  const int64_t* s = p.out_stride;
  for (int ch = 0; ch < 3; ++ch)
    if (ch >= p.c)
      for (int i = 0; i < 64; ++i) gr[ch][i] = Vec(0.0f);
  for (int ch = 0; ch < p.c; ++ch) {
    const float* plane = gout + k * s[0] + ch * s[2];  // of image 0
    if (g.interior) {
      const float* base[kLanes];
      lane_bases(plane, g, s[1], s[3], s[4], 8, base);
      for (int r = 0; r < 8; ++r) load_lane_rows(base, r * s[3], s[4], gr[ch] + r * 8);
    } else {
      for (int i = 0; i < 64; ++i) {
        for (int j = 0; j < kLanes; ++j) {
          const int64_t y = g.by[j] * 8 + i / 8, x = g.bx[j] * 8 + i % 8;
          gr[ch][i].v[j] = y < p.h && x < p.w ? plane[g.n[j] * s[1] + y * s[3] + x * s[4]] : 0.0f;
        }
      }
    }
    for (int i = 0; i < 64; ++i) gr[ch][i] = pass_unclamped(px[ch][i], gr[ch][i]);
  }
}

void store_grad_in(const RoundtripParams& p, const Group& g, Vec (*acc)[64]) {
  float* gin = static_cast<float*>(p.grad_input);
  const int64_t* s = p.grad_in_stride;
  if (g.interior) {
    for (int ch = 0; ch < p.c; ++ch) {
      float* base[kLanes];
      lane_bases(gin + ch * s[1], g, s[0], s[2], s[3], 8, base);
      for (int r = 0; r < 8; ++r) store_lane_rows(acc[ch] + r * 8, base, r * s[2], s[3], g.count);
    }
    return;
  }
  for (int j = 0; j < g.count; ++j) {
    float lane[3][64];
    for (int ch = 0; ch < p.c; ++ch)
      for (int i = 0; i < 64; ++i) lane[ch][i] = acc[ch][i][j];
    fold_padding_adjoint(int(p.c), g.by[j], g.bx[j], p.h, p.w, lane);
    for (int i = 0; i < 64; ++i) {
      const int64_t y = g.by[j] * 8 + i / 8, x = g.bx[j] * 8 + i % 8;
      if (y >= p.h || x >= p.w) continue;
      for (int ch = 0; ch < p.c; ++ch) gin[offset4(s, g.n[j], ch, y, x)] = lane[ch][i];
    }
  }
}

template <typename IO>
void backward_group(const RoundtripParams& p, const Group& g) {
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  Vec coef[3][64], acc[3][64];
  load_group<IO>(p, g, coef, nullptr);
  encode_block(ycc, channels, coef);
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 64; ++i) acc[ch][i] = Vec(0.0f);
  for (int64_t k = 0; k < p.levels; ++k) {
    const float* luma = table_for(p, k, g.n[0], false);
    const float* chroma = table_for(p, k, g.n[0], true);
    Vec px[3][64], gr[3][64];
    decode_pixels(ycc, channels, coef, luma, chroma, p.rounding, px);
    load_grad_out(p, g, k, px, gr);
    backward_level(ycc, channels, coef, luma, chroma, p.rounding, gr, acc);
  }
  store_grad_in(p, g, acc);
}

// After streaming stores: order them before the work item is reported done (parallel.h).
inline void fence_streaming_stores(const RoundtripParams& p) {
#if defined(__SSE__)
  if (p.stream_output) _mm_sfence();
#else
  (void)p;
#endif
}

#include "simd_420.h"

}  // namespace

int lanes() { return kLanes; }

void chroma_420(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end) {
  const Geometry geo = geometry(p);
  // The next group (run next, or soon after in the interleaved order) is prefetched during this one.
  for_each_group(p, l, begin, end, 16, [&](const Group& g, const Group* next) {
    if (p.dtype == kUInt8) chroma_group_420<uint8_t>(p, geo, g, next);
    else chroma_group_420<float>(p, geo, g, next);
  });
}

void luma_420(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end, InputRange* range) {
  const Geometry geo = geometry(p);
  for_each_group(p, l, begin, end, 8, [&](const Group& g, const Group* next) {
    if (p.dtype == kUInt8) luma_group_420<uint8_t>(p, geo, g, next, nullptr);
    else luma_group_420<float>(p, geo, g, next, range);
  });
  fence_streaming_stores(p);
}

void one_pass_420(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end, InputRange* range) {
  const Geometry geo = geometry(p);
  if (p.dtype == kUInt8) one_pass_group_range<uint8_t>(p, geo, l, begin, end, nullptr);
  else one_pass_group_range<float>(p, geo, l, begin, end, range);
  fence_streaming_stores(p);
}

void forward_444(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end, InputRange* range) {
  for_each_group(p, l, begin, end, 8, [&](const Group& g, const Group* next) {
    if (p.dtype == kUInt8) forward_group<uint8_t>(p, g, next, nullptr);
    else forward_group<float>(p, g, next, range);
  });
  fence_streaming_stores(p);
}

void divide_values(const float* a, float* q, int64_t n, float b) {
  const Vec divisor(b), reciprocal(1.0f / b);
  for (int64_t i = 0; i < n; i += kLanes) {
    const int m = n - i < kLanes ? int(n - i) : kLanes;
    Vec x(1.0f);
    for (int j = 0; j < m; ++j) x.v[j] = a[i + j];
    const Vec r = divide(x, divisor, reciprocal);
    for (int j = 0; j < m; ++j) q[i + j] = r.v[j];
  }
}

int64_t store_division_mismatches() {
  const int32_t last = 0x437F0000;  // the bits of 255.0f: the floats of [+0, 255] are the patterns 0 .. last
  vi lane, mismatches = vi{};
  for (int j = 0; j < kLanes; ++j) lane[j] = j;
  for (int32_t base = 0; base <= last; base += kLanes) {
    vi bits = lane + base;
    bits = bits > last ? vi{} + last : bits;
    const vf x = __builtin_bit_cast(vf, bits);
    const vf got = to_pixel(Vec(x), static_cast<const float*>(nullptr)).v, want = x / broadcast(255.0f);
    mismatches -= __builtin_bit_cast(vi, got) != __builtin_bit_cast(vi, want);  // -1 where they differ
  }
  int64_t total = 0;
  for (int j = 0; j < kLanes; ++j) total += mismatches[j];
  return total;
}

void backward_444(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end) {
  for (int64_t item = begin; item < end; ++item) backward_group<float>(p, make_group(p, l, item));
}

}  // namespace NNJPEG_SIMD_ISA
}  // namespace cpu
}  // namespace nnjpeg
