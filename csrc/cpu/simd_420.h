// The CPU SIMD path for the 4:2:0 forward, included by simd_impl.h inside its ISA namespace. The two phases
// of the scalar kernel (roundtrip_block.h), one block per lane, each lane bitwise equal to it:
//   chroma phase: groups of chroma blocks (16x16-pixel macro-blocks): Cb/Cr samples (2x2 means), scaled
//                 DCT, decoded at every level into p.workspace;
//   luma phase:   groups of luma 8x8 blocks: luma DCT and decode, the decoded chroma upsampled with
//                 libjpeg's "fancy" filter, back to RGB, stored.
// Two orders: one_pass_group_range (most batches) runs both phases over the same groups of macro-blocks and
// reads the input once: the chroma phase also takes the luma DCT of each macro-block's four 8x8 blocks, and
// the luma of a group is decoded and stored as soon as the chroma it upsamples is decoded. For a batch of too
// few images to share out that way, chroma_420 and luma_420 (simd_impl.h) run the phases one after the other
// over the batch, and the luma phase loads the input again.
// Macro-blocks that cross the image edge take the scalar sample code lane by lane (edge replication); in one
// pass their luma is loaded again.

// Cb/Cr samples of a group whose macro-blocks lie wholly inside the image, from rows of 16 pixels per lane:
// chroma_samples_420's arithmetic in its order.
// With kWithLuma, also the level-shifted luma of the macro-blocks' 8x8 blocks (pixel (R, C) of a macro-block
// -> luma[2 * (R / 8) + C / 8][8 * (R % 8) + C % 8]), and with `range` (float input) every pixel folded in.
template <typename IO, bool kWithLuma = false>
void chroma_samples_group(const RoundtripParams& p, const Group& g, const Group* next, Vec (*cc)[64],
                          Vec (*luma)[64] = nullptr, InputRange* range = nullptr) {
  const IO* in = static_cast<const IO*>(p.input);
  const int64_t* s = p.in_stride;
  const IO* base[3][kLanes];
  const IO* next_base[3][kLanes];
  const bool prefetch = next != nullptr && next->interior && s[3] == 1;
  for (int ch = 0; ch < 3; ++ch) {
    lane_bases(in + ch * s[1], g, s[0], s[2], s[3], 16, base[ch]);
    if (prefetch) lane_bases(in + ch * s[1], *next, s[0], s[2], s[3], 16, next_base[ch]);
  }
  RowRange seen;
  for (int r = 0; r < 8; ++r) {
    Vec cb[2][16], cr[2][16];  // [pixel row 2r + dy][pixel column]
    for (int dy = 0; dy < 2; ++dy) {
      Vec px[3][16];
      for (int ch = 0; ch < 3; ++ch) {
        if (prefetch) prefetch_lane_rows(next_base[ch], (2 * r + dy) * s[2], 16);
        for (int half = 0; half < 2; ++half) {
          load_lane_rows(base[ch], (2 * r + dy) * s[2] + 8 * half * s[3], s[3], px[ch] + 8 * half);
          if (range)
            for (int c = 8 * half; c < 8 * half + 8; ++c) seen.add(px[ch][c].v);
          for (int c = 8 * half; c < 8 * half + 8; ++c) px[ch][c] = from_pixel(px[ch][c], in);
        }
      }
      const int row = 2 * r + dy;  // of the macro-block
      for (int c = 0; c < 16; ++c) {
        Vec y;
        rgb_to_ycbcr_shifted(px[0][c], px[1][c], px[2][c], y, cb[dy][c], cr[dy][c]);
        if (kWithLuma) luma[2 * (row / 8) + c / 8][8 * (row % 8) + c % 8] = y;
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
  if (range) seen.fold_into(*range);
}

// Cb/Cr samples of a group of chroma blocks at the image edge: the scalar code lane by lane.
template <typename IO>
void chroma_samples_edge(const RoundtripParams& p, const Group& g, Vec (*cc)[64]) {
  for (int j = 0; j < kLanes; ++j) {
    float lane[2][64];
    chroma_samples_420<IO, float>(p, BlockCoord{g.n[j], g.by[j], g.bx[j]}, lane);
    for (int ch = 0; ch < 2; ++ch)
      for (int i = 0; i < 64; ++i) cc[ch][i].v[j] = lane[ch][i];
  }
}

// Cb/Cr samples -> scaled DCT -> decoded at every level into p.workspace (float).
void chroma_decode_store(const RoundtripParams& p, const Geometry& geo, const Group& g, Vec (*cc)[64]) {
  fdct8x8_scaled(cc[0]);
  fdct8x8_scaled(cc[1]);
  float* ws = static_cast<float*>(p.workspace);
  const int64_t plane = geo.chroma_h * geo.chroma_w;
  for (int64_t k = 0; k < p.levels; ++k) {
    for (int ch = 0; ch < 2; ++ch) {
      Vec dec[64];
      decode_block_simd(cc[ch], thread_divisor_cache()(table_for(p, k, g.n[0], true), p.call_id), p.rounding, dec);
      float* base[kLanes];
      lane_bases(ws + (k * p.n * 2 + ch) * plane, g, 2 * plane, geo.chroma_w, 1, 8, base);
      for (int r = 0; r < 8; ++r) store_lane_rows(dec + r * 8, base, r * geo.chroma_w, 1, g.count);
    }
  }
}

// Chroma phase for one group of chroma blocks: decoded Cb/Cr of every level into p.workspace.
template <typename IO>
void chroma_group_420(const RoundtripParams& p, const Geometry& geo, const Group& g, const Group* next) {
  Vec cc[2][64];
  if (g.interior) chroma_samples_group<IO>(p, g, next, cc);
  else chroma_samples_edge<IO>(p, g, cc);
  chroma_decode_store(p, geo, g, cc);
}

// Where the chroma windows of a group's lanes lie (chroma_window), worked out once per group for both planes
// and every level: the offsets of each lane's 6 window rows from a plane of image 0 (image, clamped row, first
// column), and for a lane whose columns need clamping, the permute of 8 samples that clamps them. (Worked out
// per plane and level before: W1 float32 4:2:0 26.2 -> 25.5 ms, W2 8.05 -> 7.60, W3 36.0 -> 34.8; uint8 W1
// 22.0 -> 21.5, W2 6.16 -> 5.89. In-process A/B, Intel Sapphire Rapids guest, 2 threads.)
struct WindowLanes {
  typedef int32_t pick8 __attribute__((vector_size(32)));
  int64_t row[6][kLanes];
  pick8 pick[kLanes];
  bool permute[kLanes];
  bool all_inside;  // every lane's window lies inside the plane: row[a][j] = row[0][j] + a * chroma_w
};

WindowLanes window_lanes(const Geometry& geo, const Group& g) {
  WindowLanes wl;
  wl.all_inside = true;
  const int64_t w = geo.chroma_w;  // a multiple of 8, so a row of 8 samples fits in every plane row
  const int64_t image_stride = 2 * geo.chroma_h * w;  // the workspace holds an image's Cb and Cr planes in turn
  for (int j = 0; j < kLanes; ++j) {
    const int64_t r0 = g.by[j] * 4 - 1, c0 = g.bx[j] * 4 - 1, image = g.n[j] * image_stride;
    const bool cols_inside = c0 >= 0 && c0 + 5 < geo.chroma_valid_w && c0 + 8 <= w;
    const bool rows_inside = r0 >= 0 && r0 + 5 < geo.chroma_valid_h;
    wl.all_inside = wl.all_inside && cols_inside && rows_inside;
    wl.permute[j] = !cols_inside;
    const int64_t start = cols_inside ? c0 : (c0 < 0 ? 0 : (c0 > w - 8 ? w - 8 : c0));
    for (int b = 0; b < 8 && !cols_inside; ++b) {  // (read only where the columns are permuted)
      int64_t col = c0 + (b < 6 ? b : 5);
      col = col < 0 ? 0 : (col >= geo.chroma_valid_w ? geo.chroma_valid_w - 1 : col);
      wl.pick[j][b] = int32_t(col - start);  // in [0, 8): the clamped columns lie in [start, start + 8)
    }
    for (int a = 0; a < 6; ++a) {
      int64_t row = r0 + a;
      row = row < 0 ? 0 : (row >= geo.chroma_valid_h ? geo.chroma_valid_h - 1 : row);
      wl.row[a][j] = image + row * w + start;
    }
  }
  return wl;
}

// The decoded chroma samples around a group's luma blocks (plane0: that plane of image 0 in the workspace):
// win[a][b] of lane j is the sample at row by*4 - 1 + a, column bx*4 - 1 + b, clamped to the ceil(H/2) x
// ceil(W/2) plane as fancy_upsample clamps its neighbours (the centre samples of stored pixels always lie
// inside, so clamping them changes nothing). Each lane reads its 6 window rows as rows of 8 samples (6 used),
// and every window row goes into lanes at once. At an edge, the rows are clamped through the row offsets, and
// where the columns need clamping each row's 8 samples are permuted into the clamped columns (into a scratch
// row). (It was a per-sample gather into the scratch: on W2, 32x32 images where 12 of 16 lanes lie at an
// edge, the window took 18% of the 4:2:0 call.)
void chroma_window(const float* plane0, const Geometry& geo, const WindowLanes& wl, Vec (*win)[6]) {
  typedef float row8 __attribute__((vector_size(32)));
  if (wl.all_inside) {
    const float* base[kLanes];
    for (int j = 0; j < kLanes; ++j) base[j] = plane0 + wl.row[0][j];
    for (int a = 0; a < 6; ++a) {
      Vec cols[8];
      load_lane_rows(base, a * geo.chroma_w, 1, cols);
      for (int b = 0; b < 6; ++b) win[a][b] = cols[b];
    }
    return;
  }
  alignas(32) float scratch[kLanes][6][8];
  const float* rows[6][kLanes];
  for (int j = 0; j < kLanes; ++j)
    for (int a = 0; a < 6; ++a) {
      rows[a][j] = plane0 + wl.row[a][j];
      if (!wl.permute[j]) continue;
      row8 samples;
      memcpy(&samples, rows[a][j], sizeof samples);
      samples = __builtin_shuffle(samples, wl.pick[j]);
      memcpy(scratch[j][a], &samples, sizeof samples);
      rows[a][j] = scratch[j][a];
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

// Scaled DCT coefficients of the level-shifted luma of a group of luma blocks, from the input (folding every
// pixel of the blocks into `range`, float input).
template <typename IO>
void luma_coefs_420(const RoundtripParams& p, const Group& g, const Group* next, InputRange* range, Vec* coef) {
  Vec px[3][64];
  load_group<IO>(p, g, px, range, next);
  for (int i = 0; i < 64; ++i) {
    Vec cb, cr;
    rgb_to_ycbcr_shifted(px[0][i], px[1][i], px[2][i], coef[i], cb, cr);
  }
  fdct8x8_scaled(coef);
}

// Level k of a group of luma blocks from its coefficients: the decoded luma with the decoded chroma of
// p.workspace upsampled, back to RGB (0..255, not clamped).
void luma_level_pixels_420(const RoundtripParams& p, const Geometry& geo, const Group& g, const WindowLanes& wl,
                           const Vec* coef, int64_t k, Vec (*px)[64]) {
  const float* ws = static_cast<const float*>(p.workspace);
  const int64_t plane = geo.chroma_h * geo.chroma_w;
  Vec dec[64], win[2][6][6];
  decode_block_simd(coef, thread_divisor_cache()(table_for(p, k, g.n[0], false), p.call_id), p.rounding, dec);
  for (int ch = 0; ch < 2; ++ch) chroma_window(ws + (k * p.n * 2 + ch) * plane, geo, wl, win[ch]);
  for (int i = 0; i < 64; ++i)
    ycbcr_shifted_to_rgb(dec[i], upsample_from_window(win[0], i / 8, i % 8),
                         upsample_from_window(win[1], i / 8, i % 8), px[0][i], px[1][i], px[2][i]);
}

// Every level of a group of luma blocks from its coefficients, stored (lanes past the image store nothing).
template <typename IO>
void luma_decode_store_420(const RoundtripParams& p, const Geometry& geo, const Group& g, const Vec* coef) {
  const WindowLanes wl = window_lanes(geo, g);
  for (int64_t k = 0; k < p.levels; ++k) {
    Vec px[3][64];
    luma_level_pixels_420(p, geo, g, wl, coef, k, px);
    store_group<IO>(p, g, k, px);
  }
}

// store_group of two interior groups whose lanes' blocks lie side by side (left: g0, right: g1), row by row
// and lane by lane, so that each lane's two 32-byte halves of a 16-pixel row are written one after the other.
// (Streaming stores write a line to memory once it is complete: stored a group after the other, every line
// was left half written, and the one-pass 4:2:0 ran at half the speed.) No clamp summaries (4:2:0 has none).
template <typename IO>
void store_side_by_side(const RoundtripParams& p, const Group& g0, const Group& g1, int64_t k, Vec (*px0)[64],
                        Vec (*px1)[64]) {
  IO* out = static_cast<IO*>(p.output);
  const int64_t* s = p.out_stride;
  for (int ch = 0; ch < p.c; ++ch) {
    IO* plane = out + k * s[0] + ch * s[2];  // of image 0
    IO* base0[kLanes];
    IO* base1[kLanes];
    lane_bases(plane, g0, s[1], s[3], s[4], 8, base0);
    lane_bases(plane, g1, s[1], s[3], s[4], 8, base1);
    for (int r = 0; r < 8; ++r) {
      vf left[8], right[8];
      for (int c = 0; c < 8; ++c) {
        left[c] = to_pixel(px0[ch][r * 8 + c], plane).v;
        right[c] = to_pixel(px1[ch][r * 8 + c], plane).v;
      }
      transpose_pairs(left);
      transpose_pairs(right);
      const int64_t off = r * s[3];
#if NNJPEG_SIMD_LANES == 16
      if constexpr (std::is_same<IO, uint8_t>::value) {
        // uint8 rows that stream (streaming_stores.h): each lane's two halves of a 16-pixel row, 16 bytes at a
        // 16-byte multiple of a row, one streaming store. AMD Zen 5 guest, 2 threads, A/B in one process,
        // medians: W1 uint8 4:2:0 15.37 -> 13.17 ms, W3 16.92 -> 15.11. (Streaming uint8 4:4:4 too, where only
        // groups of neighbouring blocks make 16-byte pieces, measured W1 12.72 -> 13.88 ms and K = 5 36.0 ->
        // 40.9, W3 16.2 -> 14.8: not kept.)
        if (p.stream_output && g0.count == kLanes && s[4] == 1) {
          for (int i = 0; i < 8; ++i) {
            const __m128i l = lane_bytes(left[i]), rt = lane_bytes(right[i]);
            stream16(base0[i] + off, _mm_unpacklo_epi64(l, rt));
            stream16(base0[i + 8] + off, _mm_unpackhi_epi64(l, rt));
          }
          continue;
        }
      }
#endif
      // Unrolled, as store_lane_rows does (W1 float32 21.3 -> 19.6 ms, uint8 20.8 -> 18.3, W3 uint8 31.2 -> 24.5).
      if (g0.count == kLanes && s[4] == 1) {
        for (int i = 0; i < 8; ++i) {
          store_pair(left[i], base0[i] + off, base0[kHalves == 2 ? i + 8 : i] + off, true, 1, p.stream_output);
          store_pair(right[i], base1[i] + off, base1[kHalves == 2 ? i + 8 : i] + off, true, 1, p.stream_output);
        }
        continue;
      }
      for (int i = 0; i < 8 && i < g0.count; ++i) {
        const bool high = i + 8 < g0.count;
        store_pair(left[i], base0[i] + off, base0[kHalves == 2 ? i + 8 : i] + off, high, s[4], p.stream_output);
        store_pair(right[i], base1[i] + off, base1[kHalves == 2 ? i + 8 : i] + off, high, s[4], p.stream_output);
      }
    }
  }
}

// Luma phase for one group of luma blocks (after the chroma phase filled p.workspace).
template <typename IO>
void luma_group_420(const RoundtripParams& p, const Geometry& geo, const Group& g, const Group* next,
                    InputRange* range) {
  Vec coef[64];
  luma_coefs_420<IO>(p, g, next, range, coef);
  luma_decode_store_420<IO>(p, geo, g, coef);
}

// Luma block (dy, dx) of each lane's macro-block in a group of macro-blocks (chroma blocks). Its lanes may
// hold blocks past the image (in a macro-block that crosses the edge): computed, never stored.
Group luma_subgroup(const RoundtripParams& p, const Group& mb, int dy, int dx) {
  Group g;
  g.count = mb.count;
  g.interior = true;
  for (int j = 0; j < kLanes; ++j) {
    g.n[j] = mb.n[j];
    g.by[j] = 2 * mb.by[j] + dy;
    g.bx[j] = 2 * mb.bx[j] + dx;
    g.interior = g.interior && (g.by[j] + 1) * 8 <= p.h && (g.bx[j] + 1) * 8 <= p.w;
  }
  return g;
}

// A group of macro-blocks whose chroma is decoded and whose luma waits for the chroma of its neighbours.
struct PendingLuma {
  Vec coef[4][64];   // luma_subgroup (dy, dx) = (i / 2, i % 2); unset where !from_samples
  Group mb;
  bool from_samples;  // coef came with the chroma samples; else the luma is loaded again (edge groups)
  int64_t needs;      // the last chroma group its upsampling reads
};

// The chroma group that holds macro-block (n, mby, mbx) of layout l.
int64_t group_of(const GroupLayout& l, int64_t n, int64_t mby, int64_t mbx) {
  const int64_t local = mby * l.blocks_x + mbx;
  return l.spans_images ? (n * l.blocks_per_image + local) / kLanes : n * l.groups_per_image + local / kLanes;
}

// Both phases over groups [begin, end) of macro-blocks (layout l over the chroma blocks; the range holds whole
// images), reading the input once: each group's chroma is sampled, decoded and stored with its luma DCT kept
// in a ring; the luma of a group is decoded, combined and stored once the chroma groups of the macro-blocks
// right of and below its own are decoded (fancy upsampling reads one chroma sample past a macro-block).
// Group m reads chroma up to group m + blocks_x / kLanes + 1, so a ring of blocks_x / kLanes + 3 groups
// never overwrites one still pending. With `range` (float input), folds every input pixel into it.
// (Intel Sapphire Rapids guest, in-process A/B against the two phases interleaved image by image (large
// images) or in items of a few images (small ones), 2 threads, medians: float32 W1 27.0 -> 23.5 ms, W2 7.49 ->
// 6.83, W3 36.7 -> 31.0; uint8 W1 22.4 -> 19.9, W2 6.33 -> 5.70, W3 30.3 -> 25.3.)
template <typename IO>
void one_pass_group_range(const RoundtripParams& p, const Geometry& geo, const GroupLayout& l, int64_t begin,
                          int64_t end, InputRange* range) {
  static thread_local std::vector<PendingLuma> ring;
  const int64_t slots = l.blocks_x / kLanes + 3, mb_rows = l.blocks_per_image / l.blocks_x;
  if (int64_t(ring.size()) < slots) ring.resize(size_t(slots));
  int64_t luma_next = begin, m = begin;  // luma [begin, luma_next) stored; chroma [begin, m) decoded
  auto run_luma = [&](const PendingLuma& pending) {
    for (int dy = 0; dy < 2; ++dy) {  // the two luma blocks of each macro-block row side by side
      const Group g[2] = {luma_subgroup(p, pending.mb, dy, 0), luma_subgroup(p, pending.mb, dy, 1)};
      Vec loaded[2][64];
      const Vec* coef[2];
      for (int dx = 0; dx < 2; ++dx) {
        coef[dx] = pending.from_samples ? pending.coef[2 * dy + dx] : loaded[dx];
        if (!pending.from_samples) luma_coefs_420<IO>(p, g[dx], nullptr, range, loaded[dx]);
      }
      const WindowLanes wl[2] = {window_lanes(geo, g[0]), window_lanes(geo, g[1])};
      for (int64_t k = 0; k < p.levels; ++k) {
        Vec px[2][3][64];
        for (int dx = 0; dx < 2; ++dx) luma_level_pixels_420(p, geo, g[dx], wl[dx], coef[dx], k, px[dx]);
        if (g[0].interior && g[1].interior) {
          store_side_by_side<IO>(p, g[0], g[1], k, px[0], px[1]);
        } else {
          store_group<IO>(p, g[0], k, px[0]);
          store_group<IO>(p, g[1], k, px[1]);
        }
      }
    }
  };
  for_each_group(p, l, begin, end, 16, [&](const Group& g, const Group* next) {
    PendingLuma& pending = ring[size_t(m % slots)];
    pending.mb = g;
    pending.needs = 0;
    for (int j = 0; j < g.count; ++j) {
      const int64_t below = g.by[j] + 1 < mb_rows ? g.by[j] + 1 : mb_rows - 1;
      const int64_t right = g.bx[j] + 1 < l.blocks_x ? g.bx[j] + 1 : l.blocks_x - 1;
      const int64_t needs = group_of(l, g.n[j], below, right);
      pending.needs = needs > pending.needs ? needs : pending.needs;
    }
    Vec cc[2][64];
    pending.from_samples = g.interior;
    if (g.interior) {
      chroma_samples_group<IO, true>(p, g, next, cc, pending.coef, range);
      for (int i = 0; i < 4; ++i) fdct8x8_scaled(pending.coef[i]);
    } else {
      chroma_samples_edge<IO>(p, g, cc);
    }
    chroma_decode_store(p, geo, g, cc);
    ++m;
    while (luma_next < m && ring[size_t(luma_next % slots)].needs < m) run_luma(ring[size_t(luma_next++ % slots)]);
  });
  while (luma_next < end) run_luma(ring[size_t(luma_next++ % slots)]);
}
