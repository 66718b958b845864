// The "ste" backward from the forward's pass masks, row by row (ste_simd.h): included by ste_simd_impl.h
// inside its ISA namespace, for AVX2 (8 lanes) and AVX-512 (16 lanes).
//
// With the pass masks the gradient of pixel (y, x) of channel ch at level k is the incoming one where bit
// (y % 8) * 8 + x % 8 of its block's word is set, else +0, summed over the levels (T(0) plus each level in
// increasing order, as ste_backward_strip_summary, so the result is bitwise the same): a masked copy, one
// pass over each tensor in memory order. Row y of a plane takes byte y % 8 of each word of its block row:
// one byte per 8 pixels. Each lane's bit is shifted to the lane's sign and spread over it (an arithmetic
// shift), and the gradient ANDed with it. Masked loads (mask registers filled from a general register) ran
// 2.6x slower on the AMD Zen 5 guest, in a loop of its own over W3-sized data (11.4 against 4.4 ms, and
// 2.0 with this spread), so only the last few pixels of a row whose width is not a multiple of 8 take a
// scalar loop. float32; rows dense in grad_output and grad_input.
#pragma once

#if !defined(NNJPEG_PRIVATE_COPY) || !(NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)) && \
    !(NNJPEG_SIMD_LANES == 8 && defined(__AVX2__))
#error "ste_pass_rows_impl.h belongs to the AVX2 and AVX-512 units of ste_simd_impl.h"
#endif

namespace {

// 8 pixels from src where the bits of `pass` are set (bit i: pixel i), +0 elsewhere.
inline __m256 passed8(const float* src, uint32_t pass) {
  const __m256i to_sign = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
  const __m256i lanes = _mm256_srai_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(int(pass)), to_sign), 31);
  return _mm256_and_ps(_mm256_loadu_ps(src), _mm256_castsi256_ps(lanes));
}

inline void store8(float* dst, __m256 v, bool stream) {
  if (stream) _mm256_stream_ps(dst, v);
  else _mm256_storeu_ps(dst, v);
}

#if NNJPEG_SIMD_LANES == 16
// (The zero-masked forms, every lane set: GCC 12 warns about the plain ones' undefined pass-through operand.)
constexpr __mmask16 kAll16 = 0xFFFF;

inline __m512 passed16(const float* src, uint32_t pass) {  // passed8 for 16 pixels
  const __m512i to_sign = _mm512_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16);
  const __m512i shifted = _mm512_maskz_sllv_epi32(kAll16, _mm512_set1_epi32(int(pass)), to_sign);
  const __m512i lanes = _mm512_maskz_srai_epi32(kAll16, shifted, 31);
  return _mm512_and_ps(_mm512_loadu_ps(src), _mm512_castsi512_ps(lanes));
}

inline void store16(float* dst, __m512 v, bool stream) {
  if (!stream) {
    _mm512_storeu_ps(dst, v);
    return;
  }
  // 32-byte halves: the rows are 32-byte aligned when they stream (streaming_stores.h), not always 64.
  _mm256_stream_ps(dst, _mm512_maskz_extractf32x8_ps(__mmask8(0xFF), v, 0));
  _mm256_stream_ps(dst + 8, _mm512_maskz_extractf32x8_ps(__mmask8(0xFF), v, 1));
}
#endif

// One image row: `bytes` is byte y % 8 of its block row's first word at level 0 (the next block's byte 8
// further on, the next level's `level_bytes` further on), `grow` its gradient at level 0 and `dst` the row
// of grad_input.
struct PassRow {
  const uint8_t* bytes;
  const float* grow;
  float* dst;
};

void pass_row(const PassRow& row, int64_t w, int64_t levels, int64_t level_bytes, int64_t level_stride,
              bool stream) {
  int64_t x0 = 0;
#if NNJPEG_SIMD_LANES == 16
  for (; x0 + 16 <= w; x0 += 16) {
    const uint8_t* b = row.bytes + x0;  // block x0 / 8's byte: 8 bytes per block
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = 0; k < levels; ++k)
      acc = _mm512_add_ps(acc, passed16(row.grow + k * level_stride + x0,
                                        uint32_t(b[k * level_bytes]) | uint32_t(b[k * level_bytes + 8]) << 8));
    store16(row.dst + x0, acc, stream);
  }
#endif
  for (; x0 + 8 <= w; x0 += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t k = 0; k < levels; ++k)
      acc = _mm256_add_ps(acc, passed8(row.grow + k * level_stride + x0, row.bytes[x0 + k * level_bytes]));
    store8(row.dst + x0, acc, stream);
  }
  for (int64_t x = x0; x < w; ++x) {  // the last w % 8 pixels (never streamed: such rows do not stream)
    float acc = 0.0f;
    for (int64_t k = 0; k < levels; ++k) {
      const uint32_t bits = row.bytes[x0 + k * level_bytes];
      acc = acc + ((bits >> (x - x0)) & 1u ? row.grow[k * level_stride + x] : 0.0f);
    }
    row.dst[x] = acc;
  }
}

}  // namespace

void ste_pass_rows(const SteBackwardParams& s, int64_t begin, int64_t end, bool stream) {
  // Copied out of s: every store below may alias it as far as the compiler knows (a void* intrinsic).
  const RoundtripParams& p = s.p;
  const int64_t h = p.h, w = p.w, levels = p.levels, level_stride = p.out_stride[0];
  const int64_t level_bytes = 8 * (pass_mask_index(p, 1, 0, 0, 0, 0) - pass_mask_index(p, 0, 0, 0, 0, 0));
  const uint64_t* masks = s.pass_mask;
  const float* gout = static_cast<const float*>(p.grad_output);
  float* gin = static_cast<float*>(p.grad_input);
  int64_t y = begin % h, ch = begin / h % p.c, n = begin / h / p.c;  // row (n * C + ch) * H + y
  for (int64_t row = begin; row < end; ++row) {
    const PassRow r{reinterpret_cast<const uint8_t*>(masks + pass_mask_index(p, 0, n, ch, y / 8, 0)) + y % 8,
                    gout + offset5(p.out_stride, 0, n, ch, y, 0), gin + offset4(p.grad_in_stride, n, ch, y, 0)};
    pass_row(r, w, levels, level_bytes, level_stride, stream);
    if (++y < h) continue;
    y = 0;
    if (++ch == p.c) ch = 0, ++n;
  }
}
