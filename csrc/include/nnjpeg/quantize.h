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

// The scaled inverse DCT's input per quantization level (decode_block): D / 64 (exact: a power of two).
template <typename S>
NNJ_HD S dequant_multiplier(S divisor) { return divisor * S(0.015625); }

// quant_divisor and dequant_multiplier of the 64 coefficients of one table, prepared once for a kernel that
// reuses a table over many blocks (the CPU SIMD path): the same values the per-block computation gives.
// With each divisor's reciprocal (correctly rounded), for a compute type that divides by multiplying
// (divide, below).
template <typename S>
struct QuantDivisors {
  S divisor[64], to_idct[64], reciprocal[64];
  S half_divisor[64];  // divisor / 2 (exact): |F| <= it rounds F / divisor to 0 (half to even)
};

template <typename S>
NNJ_HD void prepare_divisors(const float* steps, QuantDivisors<S>& q) {
  for (int i = 0; i < 64; ++i) {
    q.divisor[i] = quant_divisor<S>(steps[i], i);
    q.to_idct[i] = dequant_multiplier(q.divisor[i]);
    q.reciprocal[i] = S(1) / q.divisor[i];
    q.half_divisor[i] = S(0.5) * q.divisor[i];
  }
}

// a / b, given y = 1 / b correctly rounded. The CPU SIMD vectors overload it with a form that multiplies by
// y and gives the same bits as the division (simd_vec.h); everything else divides.
template <typename T>
NNJ_HD T divide(T a, T b, T y) {
  (void)y;
  return a / b;
}

// Coefficient i's divisor and inverse-DCT multiplier from a table's steps, or prepared.
template <typename S>
NNJ_HD S divisor_at(const float* steps, int i) { return quant_divisor<S>(steps[i], i); }
template <typename S>
NNJ_HD S divisor_at(const QuantDivisors<S>& q, int i) { return q.divisor[i]; }
template <typename S>
NNJ_HD S to_idct_at(const float*, int, S divisor) { return dequant_multiplier(divisor); }
template <typename S>
NNJ_HD S to_idct_at(const QuantDivisors<S>& q, int i, S) { return q.to_idct[i]; }
// coef / divisor of coefficient i (divisor: divisor_at's).
template <typename T, typename S>
NNJ_HD T quotient_at(T coef, const float*, int, S divisor) { return coef / T(divisor); }
template <typename T, typename S>
NNJ_HD T quotient_at(T coef, const QuantDivisors<S>& q, int i, S divisor) {
  return divide(coef, T(divisor), T(q.reciprocal[i]));
}

// Quotient t = F / D of a scaled coefficient F and its divisor D = quant_divisor -> scaled inverse DCT input:
// round(t) * D / 64 with to_idct = dequant_multiplier(D), or with the smooth rounding
// r(t) = round(t) + (t - round(t))^3.
template <typename T>
NNJ_HD T dequantize_quotient(T t, T to_idct, int rounding) {
  const T r = round_half_even(t);
  if (rounding == kSmoothRound) {
    const T d = t - r;
    return (r + d * d * d) * to_idct;
  }
  return r * to_idct;
}

// The same from the scaled coefficient itself.
template <typename T>
NNJ_HD T quantize_dequantize(T coef, T divisor, T to_idct, int rounding) {
  return dequantize_quotient(coef / divisor, to_idct, rounding);
}

// d/dF of round(F / D) in the smooth mode, F a scaled coefficient and D its divisor: r'(t) = 3 (t - round(t))^2.
template <typename T>
NNJ_HD T smooth_round_derivative(T coef, T divisor) {
  const T t = coef / divisor;
  const T d = t - round_half_even(t);
  return T(3) * d * d;
}

}  // namespace nnjpeg
