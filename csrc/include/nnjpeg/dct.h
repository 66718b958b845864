// 8x8 DCT-II / DCT-III (the JPEG forward and inverse DCT), in place on a row-major block.
//
// Two forms:
// - Orthonormal (dct8x8 / idct8x8): the even/odd split, 22 multiplies per 1-D transform. The backward
//   kernels use it for the adjoints of the linear steps.
// - Scaled (fdct8x8_scaled / idct8_scaled): Arai-Agui-Nakajima's factorisation, 5 multiplies and 29
//   additions per 1-D transform. Its outputs are the orthonormal coefficients times a known factor per
//   frequency, which the quantizer folds into its divisor (quant_divisor in quantize.h), as JPEG codecs
//   do. The forward round trip runs this form: about half the arithmetic of the orthonormal one.
// Literal constants throughout, so the compiler keeps everything in registers on the GPU. 2-D
// transforms apply the 1-D one to the 8 rows, then to the 8 columns (the inverse: columns, then rows):
// blk[u * 8 + v] is the coefficient of vertical frequency u and horizontal frequency v.
#pragma once

#include "hd.h"

namespace nnjpeg {

// cos(k * pi / 16) for k = 1..7, and sqrt(1/8); the 1/2 of the orthonormal scale is folded in below.
struct DctConst {
  static constexpr double c1 = 0.98078528040323044913;
  static constexpr double c2 = 0.92387953251128675613;
  static constexpr double c3 = 0.83146961230254523708;
  static constexpr double c4 = 0.70710678118654752440;
  static constexpr double c5 = 0.55557023301960222474;
  static constexpr double c6 = 0.38268343236508977173;
  static constexpr double c7 = 0.19509032201612826785;
  static constexpr double s0 = 0.35355339059327376220;  // sqrt(1/8)
};

// Forward 1-D DCT of 8 values read and written with a stride (1 for a row, 8 for a column).
template <typename T>
NNJ_HD void dct8(T* v, int stride) {
  using K = DctConst;
  const T a0 = v[0] + v[7 * stride], b0 = v[0] - v[7 * stride];
  const T a1 = v[stride] + v[6 * stride], b1 = v[stride] - v[6 * stride];
  const T a2 = v[2 * stride] + v[5 * stride], b2 = v[2 * stride] - v[5 * stride];
  const T a3 = v[3 * stride] + v[4 * stride], b3 = v[3 * stride] - v[4 * stride];
  const T half = T(0.5);
  v[0] = T(K::s0) * (a0 + a1 + a2 + a3);
  v[4 * stride] = half * T(K::c4) * ((a0 + a3) - (a1 + a2));
  v[2 * stride] = half * (T(K::c2) * (a0 - a3) + T(K::c6) * (a1 - a2));
  v[6 * stride] = half * (T(K::c6) * (a0 - a3) - T(K::c2) * (a1 - a2));
  v[1 * stride] = half * (T(K::c1) * b0 + T(K::c3) * b1 + T(K::c5) * b2 + T(K::c7) * b3);
  v[3 * stride] = half * (T(K::c3) * b0 - T(K::c7) * b1 - T(K::c1) * b2 - T(K::c5) * b3);
  v[5 * stride] = half * (T(K::c5) * b0 - T(K::c1) * b1 + T(K::c7) * b2 + T(K::c3) * b3);
  v[7 * stride] = half * (T(K::c7) * b0 - T(K::c5) * b1 + T(K::c3) * b2 - T(K::c1) * b3);
}

// Inverse 1-D DCT (the transpose of dct8).
template <typename T>
NNJ_HD void idct8(T* v, int stride) {
  using K = DctConst;
  const T half = T(0.5);
  const T X0 = T(K::s0) * v[0], X4 = half * T(K::c4) * v[4 * stride];
  const T X2 = half * v[2 * stride], X6 = half * v[6 * stride];
  const T X1 = half * v[stride], X3 = half * v[3 * stride];
  const T X5 = half * v[5 * stride], X7 = half * v[7 * stride];
  const T e0 = X0 + X4 + T(K::c2) * X2 + T(K::c6) * X6;
  const T e1 = X0 - X4 + T(K::c6) * X2 - T(K::c2) * X6;
  const T e2 = X0 - X4 - T(K::c6) * X2 + T(K::c2) * X6;
  const T e3 = X0 + X4 - T(K::c2) * X2 - T(K::c6) * X6;
  const T o0 = T(K::c1) * X1 + T(K::c3) * X3 + T(K::c5) * X5 + T(K::c7) * X7;
  const T o1 = T(K::c3) * X1 - T(K::c7) * X3 - T(K::c1) * X5 - T(K::c5) * X7;
  const T o2 = T(K::c5) * X1 - T(K::c1) * X3 + T(K::c7) * X5 + T(K::c3) * X7;
  const T o3 = T(K::c7) * X1 - T(K::c5) * X3 + T(K::c3) * X5 - T(K::c1) * X7;
  v[0] = e0 + o0;
  v[7 * stride] = e0 - o0;
  v[stride] = e1 + o1;
  v[6 * stride] = e1 - o1;
  v[2 * stride] = e2 + o2;
  v[5 * stride] = e2 - o2;
  v[3 * stride] = e3 + o3;
  v[4 * stride] = e3 - o3;
}

// 2-D forward DCT of a row-major 8x8 block, in place.
template <typename T>
NNJ_HD void dct8x8(T* blk) {
  for (int r = 0; r < 8; ++r) dct8(blk + 8 * r, 1);
  for (int c = 0; c < 8; ++c) dct8(blk + c, 8);
}

// 2-D inverse DCT of a row-major 8x8 block, in place.
template <typename T>
NNJ_HD void idct8x8(T* blk) {
  for (int c = 0; c < 8; ++c) idct8(blk + c, 8);
  for (int r = 0; r < 8; ++r) idct8(blk + 8 * r, 1);
}

// ---- Scaled (AAN) form. For an orthonormal coefficient X[k] of a 1-D signal:
//   fdct8_scaled returns X[k] * aan_scale(k), and idct8_scaled(X[k] * aan_scale(k) / 8) is the signal,
// with aan_scale(0) = 4 cos(pi/4) = 2 sqrt(2) and aan_scale(k) = 4 cos(k pi/16) for k = 1..7.
NNJ_HD double aan_scale(int k) {
  switch (k) {
    case 0: return 2.82842712474619009760;
    case 1: return 3.92314112161292179652;
    case 2: return 3.69551813004514702453;
    case 3: return 3.32587844921018094830;
    case 4: return 2.82842712474619009760;
    case 5: return 2.22228093207840899896;
    case 6: return 1.53073372946035908693;
    default: return 0.78036128806451307140;
  }
}

// Forward 1-D DCT, AAN flow graph (outputs scaled by aan_scale), strided like dct8.
template <typename T>
NNJ_HD void fdct8_scaled(T* v, int stride) {
  const T s07 = v[0] + v[7 * stride], d07 = v[0] - v[7 * stride];
  const T s16 = v[stride] + v[6 * stride], d16 = v[stride] - v[6 * stride];
  const T s25 = v[2 * stride] + v[5 * stride], d25 = v[2 * stride] - v[5 * stride];
  const T s34 = v[3 * stride] + v[4 * stride], d34 = v[3 * stride] - v[4 * stride];
  // Even half: a 4-point DCT of the sums.
  const T e0 = s07 + s34, e3 = s07 - s34, e1 = s16 + s25, e2 = s16 - s25;
  v[0] = e0 + e1;
  v[4 * stride] = e0 - e1;
  const T r = (e2 + e3) * T(0.70710678118654752440);  // cos(pi/4)
  v[2 * stride] = e3 + r;
  v[6 * stride] = e3 - r;
  // Odd half: one rotation (3 multiplies) and one cos(pi/4) butterfly on the differences.
  const T a = d34 + d25, b = d25 + d16, c = d16 + d07;
  const T z5 = (a - c) * T(0.38268343236508977173);  // cos(3 pi/8)
  const T z2 = a * T(0.54119610014619698440) + z5;    // cos(pi/8) - cos(3 pi/8)
  const T z4 = c * T(1.30656296487637652786) + z5;    // cos(pi/8) + cos(3 pi/8)
  const T z3 = b * T(0.70710678118654752440);
  const T z11 = d07 + z3, z13 = d07 - z3;
  v[5 * stride] = z13 + z2;
  v[3 * stride] = z13 - z2;
  v[stride] = z11 + z4;
  v[7 * stride] = z11 - z4;
}

// The last stage of idct8_scaled (and idct8_scaled_first4): the odd half's last butterflies, then the outputs.
template <typename T>
NNJ_HD void idct8_scaled_outputs(T* v, int stride, T e0, T e1, T e2, T e3, T o7, T o10, T o11, T o12) {
  const T o6 = o12 - o7, o5 = o11 - o6, o4 = o10 - o5;
  v[0] = e0 + o7;
  v[7 * stride] = e0 - o7;
  v[stride] = e1 + o6;
  v[6 * stride] = e1 - o6;
  v[2 * stride] = e2 + o5;
  v[5 * stride] = e2 - o5;
  v[3 * stride] = e3 + o4;
  v[4 * stride] = e3 - o4;
}

// Inverse 1-D DCT, AAN flow graph: input k holds X[k] * aan_scale(k) / 8.
template <typename T>
NNJ_HD void idct8_scaled(T* v, int stride) {
  // Even half from inputs 0, 2, 4, 6.
  const T a0 = v[0] + v[4 * stride], a1 = v[0] - v[4 * stride];
  const T s26 = v[2 * stride] + v[6 * stride];
  const T d26 = (v[2 * stride] - v[6 * stride]) * T(1.41421356237309504880) - s26;  // sqrt(2)
  const T e0 = a0 + s26, e3 = a0 - s26, e1 = a1 + d26, e2 = a1 - d26;
  // Odd half from inputs 1, 3, 5, 7.
  const T z13 = v[5 * stride] + v[3 * stride], z10 = v[5 * stride] - v[3 * stride];
  const T z11 = v[stride] + v[7 * stride], z12 = v[stride] - v[7 * stride];
  const T o7 = z11 + z13;
  const T o11 = (z11 - z13) * T(1.41421356237309504880);
  const T z5 = (z10 + z12) * T(1.84775906502257351225);  // 2 cos(pi/8)
  const T o10 = z5 - z12 * T(1.08239220029239396880);    // 2 (cos(pi/8) - cos(3 pi/8))
  const T o12 = z5 - z10 * T(2.61312592975275305571);    // 2 (cos(pi/8) + cos(3 pi/8))
  idct8_scaled_outputs(v, stride, e0, e1, e2, e3, o7, o10, o11, o12);
}

// idct8_scaled of inputs 0-3 with inputs 4-7 zero: its operations without the terms of the zero inputs
// (x + 0 and x - 0 are x, 0 - x is -x, (-x) * c is -(x * c), z - (-t) is z + t), so every output is
// idct8_scaled's up to the sign of a zero value. The CPU SIMD forward uses it (csrc/cpu/simd_impl.h).
template <typename T>
NNJ_HD void idct8_scaled_first4(T* v, int stride) {
  const T v0 = v[0], v1 = v[stride], v2 = v[2 * stride], v3 = v[3 * stride];
  const T d26 = v2 * T(1.41421356237309504880) - v2;
  const T e0 = v0 + v2, e3 = v0 - v2, e1 = v0 + d26, e2 = v0 - d26;
  const T o7 = v1 + v3;
  const T o11 = (v1 - v3) * T(1.41421356237309504880);
  const T z5 = (v1 - v3) * T(1.84775906502257351225);
  const T o10 = z5 - v1 * T(1.08239220029239396880);
  const T o12 = z5 + v3 * T(2.61312592975275305571);
  idct8_scaled_outputs(v, stride, e0, e1, e2, e3, o7, o10, o11, o12);
}

// 2-D scaled forward DCT in place: blk[u * 8 + v] = orthonormal coefficient * aan_scale(u) * aan_scale(v).
template <typename T>
NNJ_HD void fdct8x8_scaled(T* blk) {
  for (int r = 0; r < 8; ++r) fdct8_scaled(blk + 8 * r, 1);
  for (int c = 0; c < 8; ++c) fdct8_scaled(blk + c, 8);
}

// The 2-D scaled inverse DCT (idct8_scaled over the columns, then the rows, with blk[u * 8 + v] holding
// coefficient * aan_scale(u) * aan_scale(v) / 64) runs inside decode_block (roundtrip_block.h), whose column
// pass takes each column straight from the dequantizer.

}  // namespace nnjpeg
