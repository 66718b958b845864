// Loading and storing pixels of each supported dtype, on the 0..255 scale used by the block math.
#pragma once

#include <stdint.h>

#include "hd.h"
#include "params.h"
#include "quantize.h"

namespace nnjpeg {

// Maps NaN to 0 and clamps to [0, 255]: the kernel never propagates NaN or Inf into a block
// (the Python layer rejects them first unless the caller turned validation off).
template <typename T>
NNJ_HD T sanitize_255(T v) {
  return v > T(0) ? (v < T(255) ? v : T(255)) : T(0);
}

// Pixel value -> 0..255 scale in the compute type T (overloaded on the pixel type).
template <typename T>
NNJ_HD T load_255(uint8_t v) { return T(v); }
template <typename T>
NNJ_HD T load_255(float v) { return sanitize_255(T(v) * T(255)); }
template <typename T>
NNJ_HD T load_255(double v) { return sanitize_255(T(v) * T(255)); }

// 0..255 value in T -> pixel value (the pixel type is that of dst): clamped, uint8 rounded half to even.
template <typename T>
NNJ_HD void store_255(T v255, uint8_t& dst) { dst = uint8_t(round_half_even(sanitize_255(v255))); }
template <typename T>
NNJ_HD void store_255(T v255, float& dst) { dst = float(sanitize_255(v255) / T(255)); }
template <typename T>
NNJ_HD void store_255(T v255, double& dst) { dst = double(sanitize_255(v255) / T(255)); }

// Offset of element (n, ch, y, x) with the given strides.
NNJ_HD int64_t offset4(const int64_t* s, int64_t n, int64_t ch, int64_t y, int64_t x) {
  return n * s[0] + ch * s[1] + y * s[2] + x * s[3];
}

// Offset of element (k, n, ch, y, x) with the given strides.
NNJ_HD int64_t offset5(const int64_t* s, int64_t k, int64_t n, int64_t ch, int64_t y, int64_t x) {
  return k * s[0] + n * s[1] + ch * s[2] + y * s[3] + x * s[4];
}

// One input pixel on the 0..255 scale; coordinates past the bottom/right edge replicate the edge.
template <typename IO, typename T>
NNJ_HD T load_pixel(const RoundtripParams& p, int64_t n, int64_t ch, int64_t y, int64_t x) {
  y = y < p.h ? y : p.h - 1;
  x = x < p.w ? x : p.w - 1;
  const IO* in = static_cast<const IO*>(p.input);
  return load_255<T>(in[offset4(p.in_stride, n, ch, y, x)]);
}

template <typename IO, typename T>
NNJ_HD void store_pixel(const RoundtripParams& p, int64_t k, int64_t n, int64_t ch, int64_t y, int64_t x,
                        T v255) {
  IO* out = static_cast<IO*>(p.output);
  store_255(v255, out[offset5(p.out_stride, k, n, ch, y, x)]);
}

}  // namespace nnjpeg
