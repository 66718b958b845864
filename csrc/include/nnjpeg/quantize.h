// Quantize + dequantize one DCT coefficient, and the derivative used by the "smooth" gradient mode.
#pragma once

#include <math.h>

#include "hd.h"
#include "params.h"

namespace nnjpeg {

NNJ_HD float round_half_even(float x) { return rintf(x); }
NNJ_HD double round_half_even(double x) { return rint(x); }

// round(F / Q) * Q, or with the smooth rounding r(t) = round(t) + (t - round(t))^3.
template <typename T>
NNJ_HD T quantize_dequantize(T coef, T step, int rounding) {
  const T t = coef / step;
  const T r = round_half_even(t);
  if (rounding == kSmoothRound) {
    const T d = t - r;
    return (r + d * d * d) * step;
  }
  return r * step;
}

// d/dF of quantize_dequantize in the smooth mode: r'(t) = 3 (t - round(t))^2.
template <typename T>
NNJ_HD T smooth_round_derivative(T coef, T step) {
  const T t = coef / step;
  const T d = t - round_half_even(t);
  return T(3) * d * d;
}

}  // namespace nnjpeg
