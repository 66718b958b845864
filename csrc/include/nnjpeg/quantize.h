// Quantize + dequantize one DCT coefficient, and the derivative used by the "smooth" gradient mode.
#pragma once

#include <math.h>

#include "dct.h"
#include "hd.h"
#include "params.h"

namespace nnjpeg {

NNJ_HD float round_half_even(float x) { return rintf(x); }
NNJ_HD double round_half_even(double x) { return rint(x); }

// The scalar type of a compute type, as decltype(scalar_of(T())): itself for float and double; the CPU
// SIMD vectors overload it too.
NNJ_HD float scalar_of(float x) { return x; }
NNJ_HD double scalar_of(double x) { return x; }

// Divisor of coefficient i of fdct8x8_scaled (dct.h) for quantization step `step`: the step times that
// coefficient's AAN scale, so that coef / divisor = (orthonormal coefficient) / step. S: float or double.
template <typename S>
NNJ_HD S quant_divisor(float step, int i) {
  return S(step) * (S(aan_scale(i / 8)) * S(aan_scale(i % 8)));
}

// idct8x8_scaled's input per quantization level: D / 64 (exact: a power of two).
template <typename S>
NNJ_HD S dequant_multiplier(S divisor) { return divisor * S(0.015625); }

// Scaled coefficient -> idct8x8_scaled input: round(F / D) * D / 64 with D = quant_divisor and
// to_idct = dequant_multiplier(D), or with the smooth rounding r(t) = round(t) + (t - round(t))^3.
template <typename T>
NNJ_HD T quantize_dequantize(T coef, T divisor, T to_idct, int rounding) {
  const T t = coef / divisor;
  const T r = round_half_even(t);
  if (rounding == kSmoothRound) {
    const T d = t - r;
    return (r + d * d * d) * to_idct;
  }
  return r * to_idct;
}

// d/dF of round(F / D) in the smooth mode, F a scaled coefficient and D its divisor: r'(t) = 3 (t - round(t))^2.
template <typename T>
NNJ_HD T smooth_round_derivative(T coef, T divisor) {
  const T t = coef / divisor;
  const T d = t - round_half_even(t);
  return T(3) * d * d;
}

}  // namespace nnjpeg
