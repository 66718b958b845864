// 8x8 orthonormal DCT-II / DCT-III (the JPEG forward and inverse DCT), in place on a row-major block.
//
// 1-D transforms use the even/odd split: 22 multiplies instead of 64, literal constants so the
// compiler keeps everything in registers on the GPU. The 2-D transform applies the 1-D one to the
// 8 rows, then to the 8 columns: blk[u * 8 + v] is the coefficient of vertical frequency u and
// horizontal frequency v.
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

}  // namespace nnjpeg
