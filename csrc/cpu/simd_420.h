// The CPU SIMD path for the 4:2:0 forward, included by simd_impl.h inside its ISA namespace. The same two
// phases as the scalar kernel (roundtrip_block.h), one block per lane, each lane bitwise equal to it:
//   chroma phase: groups of chroma blocks (16x16-pixel macro-blocks): Cb/Cr samples (2x2 means), scaled
//                 DCT, decoded at every level into p.workspace;
//   luma phase:   groups of luma 8x8 blocks: luma DCT and decode, the decoded chroma upsampled with
//                 libjpeg's "fancy" filter, back to RGB, stored.
// Macro-blocks that cross the image edge take the scalar sample code lane by lane (edge replication).

// Cb/Cr samples of a group whose macro-blocks lie wholly inside the image, from rows of 16 pixels per lane:
// chroma_samples_420's arithmetic in its order.
template <typename IO>
void chroma_samples_group(const RoundtripParams& p, const Group& g, const Group* next, Vec (*cc)[64]) {
  const IO* in = static_cast<const IO*>(p.input);
  const int64_t* s = p.in_stride;
  const IO* base[3][kLanes];
  const IO* next_base[3][kLanes];
  const bool prefetch = next != nullptr && next->interior && s[3] == 1;
  for (int ch = 0; ch < 3; ++ch) {
    lane_bases(in + ch * s[1], g, s[0], s[2], s[3], 16, base[ch]);
    if (prefetch) lane_bases(in + ch * s[1], *next, s[0], s[2], s[3], 16, next_base[ch]);
  }
  for (int r = 0; r < 8; ++r) {
    Vec cb[2][16], cr[2][16];  // [pixel row 2r + dy][pixel column]
    for (int dy = 0; dy < 2; ++dy) {
      Vec px[3][16];
      for (int ch = 0; ch < 3; ++ch) {
        if (prefetch) prefetch_lane_rows(next_base[ch], (2 * r + dy) * s[2], 16);
        for (int half = 0; half < 2; ++half) {
          load_lane_rows(base[ch], (2 * r + dy) * s[2] + 8 * half * s[3], s[3], px[ch] + 8 * half);
          for (int c = 8 * half; c < 8 * half + 8; ++c) px[ch][c] = from_pixel(px[ch][c], in);
        }
      }
      for (int c = 0; c < 16; ++c) {
        Vec luma;
        rgb_to_ycbcr_shifted(px[0][c], px[1][c], px[2][c], luma, cb[dy][c], cr[dy][c]);
      }
    }
    for (int c = 0; c < 8; ++c) {
      Vec sum_cb = Vec(0.0f), sum_cr = Vec(0.0f);
      for (int d = 0; d < 4; ++d) {
        sum_cb += cb[d / 2][2 * c + d % 2];
        sum_cr += cr[d / 2][2 * c + d % 2];
      }
      cc[0][r * 8 + c] = sum_cb * Vec(0.25f);
      cc[1][r * 8 + c] = sum_cr * Vec(0.25f);
    }
  }
}

// Chroma phase for one group of chroma blocks: decoded Cb/Cr of every level into p.workspace (float).
template <typename IO>
void chroma_group_420(const RoundtripParams& p, const Geometry& geo, const Group& g, const Group* next) {
  Vec cc[2][64];
  if (g.interior) {
    chroma_samples_group<IO>(p, g, next, cc);
  } else {
    for (int j = 0; j < kLanes; ++j) {
      float lane[2][64];
      chroma_samples_420<IO, float>(p, BlockCoord{g.n[j], g.by[j], g.bx[j]}, lane);
      for (int ch = 0; ch < 2; ++ch)
        for (int i = 0; i < 64; ++i) cc[ch][i].v[j] = lane[ch][i];
    }
  }
  fdct8x8_scaled(cc[0]);
  fdct8x8_scaled(cc[1]);
  float* ws = static_cast<float*>(p.workspace);
  const int64_t plane = geo.chroma_h * geo.chroma_w;
  for (int64_t k = 0; k < p.levels; ++k) {
    for (int ch = 0; ch < 2; ++ch) {
      Vec dec[64];
      decode_block(cc[ch], thread_divisor_cache()(table_for(p, k, g.n[0], true)), p.rounding, dec);
      float* base[kLanes];
      lane_bases(ws + (k * p.n * 2 + ch) * plane, g, 2 * plane, geo.chroma_w, 1, 8, base);
      for (int r = 0; r < 8; ++r) store_lane_rows(dec + r * 8, base, r * geo.chroma_w, 1, g.count);
    }
  }
}

// The decoded chroma samples around a group's luma blocks (plane0: that plane of image 0 in the workspace,
// image_stride apart): win[a][b] of lane j is the sample at row
// by*4 - 1 + a, column bx*4 - 1 + b, clamped to the ceil(H/2) x ceil(W/2) plane as fancy_upsample clamps
// its neighbours (the centre samples of stored pixels always lie inside, so clamping them changes nothing).
// Each lane reads its 6 window rows as rows of 8 samples (6 used); then every window row goes into lanes at
// once. At an edge, the rows are clamped through the row pointers, and where the columns need clamping, each
// row is 8 samples loaded inside the plane row and permuted into the clamped columns (into a scratch row).
// (It was a per-sample gather into the scratch: on W2, 32x32 images where 12 of 16 lanes lie at an edge,
// the window took 18% of the 4:2:0 call.)
void chroma_window(const float* plane0, int64_t image_stride, const Geometry& geo, const Group& g, Vec (*win)[6]) {
  typedef float row8 __attribute__((vector_size(32)));
  typedef int32_t pick8 __attribute__((vector_size(32)));
  alignas(32) float scratch[kLanes][6][8];
  const float* rows[6][kLanes];
  const int64_t w = geo.chroma_w;  // a multiple of 8, so a row of 8 samples fits in every plane row
  for (int j = 0; j < kLanes; ++j) {
    const float* plane = plane0 + g.n[j] * image_stride;
    const int64_t r0 = g.by[j] * 4 - 1, c0 = g.bx[j] * 4 - 1;
    const bool cols_inside = c0 >= 0 && c0 + 5 < geo.chroma_valid_w && c0 + 8 <= w;
    if (cols_inside && r0 >= 0 && r0 + 5 < geo.chroma_valid_h) {
      for (int a = 0; a < 6; ++a) rows[a][j] = plane + (r0 + a) * w + c0;  // 8 read, 6 used
      continue;
    }
    const int64_t start = c0 < 0 ? 0 : (c0 > w - 8 ? w - 8 : c0);
    pick8 pick;
    for (int b = 0; b < 8; ++b) {
      int64_t col = c0 + (b < 6 ? b : 5);
      col = col < 0 ? 0 : (col >= geo.chroma_valid_w ? geo.chroma_valid_w - 1 : col);
      pick[b] = int32_t(col - start);  // in [0, 8): the clamped columns lie in [start, start + 8)
    }
    for (int a = 0; a < 6; ++a) {
      int64_t row = r0 + a;
      row = row < 0 ? 0 : (row >= geo.chroma_valid_h ? geo.chroma_valid_h - 1 : row);
      if (cols_inside) {
        rows[a][j] = plane + row * w + c0;
        continue;
      }
      row8 samples;
      memcpy(&samples, plane + row * w + start, sizeof samples);
      samples = __builtin_shuffle(samples, pick);
      memcpy(scratch[j][a], &samples, sizeof samples);
      rows[a][j] = scratch[j][a];
    }
  }
  for (int a = 0; a < 6; ++a) {
    Vec cols[8];
    load_lane_rows_at(rows[a], cols);
    for (int b = 0; b < 6; ++b) win[a][b] = cols[b];
  }
}

// fancy_upsample at pixel (r, c) of the block, from the window: the same filter in the same order.
inline Vec upsample_from_window(const Vec (*win)[6], int r, int c) {
  const int i = 1 + r / 2, iv = (r & 1) ? i + 1 : i - 1;
  const int jc = 1 + c / 2, jh = (c & 1) ? jc + 1 : jc - 1;
  return (Vec(9.0f) * win[i][jc] + Vec(3.0f) * win[iv][jc] + Vec(3.0f) * win[i][jh] + win[iv][jh]) * Vec(0.0625f);
}

// Luma phase for one group of luma blocks (after the chroma phase filled p.workspace).
template <typename IO>
void luma_group_420(const RoundtripParams& p, const Geometry& geo, const Group& g, const Group* next,
                    InputRange* range) {
  Vec px[3][64], coef[64];
  load_group<IO>(p, g, px, range, next);
  for (int i = 0; i < 64; ++i) {
    Vec cb, cr;
    rgb_to_ycbcr_shifted(px[0][i], px[1][i], px[2][i], coef[i], cb, cr);
  }
  fdct8x8_scaled(coef);
  const float* ws = static_cast<const float*>(p.workspace);
  const int64_t plane = geo.chroma_h * geo.chroma_w;
  for (int64_t k = 0; k < p.levels; ++k) {
    Vec dec[64], win[2][6][6];
    decode_block(coef, thread_divisor_cache()(table_for(p, k, g.n[0], false)), p.rounding, dec);
    for (int ch = 0; ch < 2; ++ch) chroma_window(ws + (k * p.n * 2 + ch) * plane, 2 * plane, geo, g, win[ch]);
    for (int i = 0; i < 64; ++i)
      ycbcr_shifted_to_rgb(dec[i], upsample_from_window(win[0], i / 8, i % 8),
                           upsample_from_window(win[1], i / 8, i % 8), px[0][i], px[1][i], px[2][i]);
    store_group<IO>(p, g, k, px);
  }
}
