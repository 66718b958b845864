// JFIF (BT.601 full range) colour transform on the 0..255 scale, with the JPEG level shift of -128.
#pragma once

#include "hd.h"

namespace nnjpeg {

// RGB in 0..255 -> (Y - 128, Cb - 128, Cr - 128).
template <typename T>
NNJ_HD void rgb_to_ycbcr_shifted(T r, T g, T b, T& y, T& cb, T& cr) {
  y = T(0.299) * r + T(0.587) * g + T(0.114) * b - T(128);
  cb = T(-0.168735891647856) * r + T(-0.331264108352144) * g + T(0.5) * b;
  cr = T(0.5) * r + T(-0.418687589158345) * g + T(-0.081312410841655) * b;
}

// (Y - 128, Cb - 128, Cr - 128) -> RGB on the 0..255 scale, not clamped.
template <typename T>
NNJ_HD void ycbcr_shifted_to_rgb(T y, T cb, T cr, T& r, T& g, T& b) {
  const T yy = y + T(128);
  r = yy + T(1.402) * cr;
  g = yy + T(-0.344136286201022) * cb + T(-0.714136286201022) * cr;
  b = yy + T(1.772) * cb;
}

// Adjoint (transpose) of ycbcr_shifted_to_rgb's linear part: gradient wrt (y, cb, cr) from one wrt (r, g, b).
template <typename T>
NNJ_HD void ycbcr_to_rgb_adjoint(T gr, T gg, T gb, T& gy, T& gcb, T& gcr) {
  gy = gr + gg + gb;
  gcb = T(-0.344136286201022) * gg + T(1.772) * gb;
  gcr = T(1.402) * gr + T(-0.714136286201022) * gg;
}

// Adjoint of rgb_to_ycbcr_shifted's linear part.
template <typename T>
NNJ_HD void rgb_to_ycbcr_adjoint(T gy, T gcb, T gcr, T& gr, T& gg, T& gb) {
  gr = T(0.299) * gy + T(-0.168735891647856) * gcb + T(0.5) * gcr;
  gg = T(0.587) * gy + T(-0.331264108352144) * gcb + T(-0.418687589158345) * gcr;
  gb = T(0.114) * gy + T(0.5) * gcb + T(-0.081312410841655) * gcr;
}

}  // namespace nnjpeg
