// A float vector of kLanes lanes (8, or 16 with AVX-512) for the CPU SIMD path, on GCC/Clang vector
// extensions; each ISA translation unit compiles it with its own instruction set. Arithmetic is lane-wise
// IEEE single precision with no contraction (-ffp-contract=off), so a lane computes exactly what the
// scalar float code computes. Included only inside an anonymous namespace of an ISA translation unit.
#pragma once

#ifndef NNJPEG_SIMD_LANES
#define NNJPEG_SIMD_LANES 8
#endif
constexpr int kLanes = NNJPEG_SIMD_LANES;
static_assert(kLanes == 8 || kLanes == 16, "8 or 16 lanes");

typedef float vf __attribute__((vector_size(4 * kLanes)));
typedef int32_t vi __attribute__((vector_size(4 * kLanes)));

// s in every lane. Not `vf{} + s`: that adds +0 first (-0 + 0 is +0, so the compiler must keep the add), a
// scalar vaddss before every broadcast.
// (A fill loop measured 1.7x slower: it made GCC stop unrolling the block loops.)
inline vf broadcast(float s) {
#if NNJPEG_SIMD_LANES == 16
  return vf{s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s};
#else
  return vf{s, s, s, s, s, s, s, s};
#endif
}

struct Vec {
  vf v;
  Vec() = default;
  explicit Vec(vf x) : v(x) {}
  Vec(float s) : v(broadcast(s)) {}  // broadcast: T(x) in the shared math
  Vec(double s) : Vec(float(s)) {}
  Vec(int s) : Vec(float(s)) {}
  float operator[](int i) const { return v[i]; }
};

inline Vec operator+(Vec a, Vec b) { return Vec(a.v + b.v); }
inline Vec operator-(Vec a, Vec b) { return Vec(a.v - b.v); }
inline Vec operator*(Vec a, Vec b) { return Vec(a.v * b.v); }
inline Vec operator/(Vec a, Vec b) { return Vec(a.v / b.v); }
inline Vec operator-(Vec a) { return Vec(-a.v); }
inline Vec& operator+=(Vec& a, Vec b) { return a = a + b; }
inline Vec& operator*=(Vec& a, Vec b) { return a = a * b; }

inline float scalar_of(Vec x) { return x.v[0]; }  // the lanes' type (see quantize.h)

// True when some lane of x is not zero.
inline bool any_lane(vi x) {
#if NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)
  return _mm512_test_epi32_mask(__m512i(x), __m512i(x)) != 0;
#elif NNJPEG_SIMD_LANES == 8 && defined(__AVX__)
  return !_mm256_testz_si256(__m256i(x), __m256i(x));
#else
  int any = 0;
  for (int i = 0; i < kLanes; ++i) any |= x[i];
  return any != 0;
#endif
}

// |x| per lane (the sign bit cleared).
inline vf abs_lanes(vf x) { return vf(vi(x) & 0x7fffffff); }

// Overloads of the shared scalar helpers (found by argument-dependent lookup from the shared templates).
inline Vec round_half_even(Vec x) {  // rintf per lane: round half to even in the current rounding mode
#if NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)
  return Vec(vf(_mm512_maskz_roundscale_ps(__mmask16(0xFFFF), __m512(x.v), _MM_FROUND_CUR_DIRECTION)));
#elif NNJPEG_SIMD_LANES == 8 && defined(__AVX__)
  return Vec(vf(_mm256_round_ps(__m256(x.v), _MM_FROUND_CUR_DIRECTION)));
#else
  Vec r;
  for (int i = 0; i < kLanes; ++i) r.v[i] = rintf(x.v[i]);
  return r;
#endif
}

// a / b from y = 1 / b (correctly rounded), bitwise the division: q0 = a * y is within 1.5 ulp of a / b,
// one correction with the exact remainder (FMA) makes it faithful, and by Markstein's theorem a second
// makes it the correctly rounded quotient (no overflow or underflow: quotients of block coefficients and
// pixels are far from both). Written with the remainder negated (q * b - a) so that -0 / b stays -0.
// tests/test_cpu_isa_parity.py checks it against numpy's division around every rounding boundary. Intel
// Sapphire Rapids AVX-512 guest, quantizer only, A/B in one process, 2 threads, medians: W1 float32 22.9 ->
// 22.2 ms, W2 6.96 -> 6.70, W3 26.7 -> 25.5; uint8 W1 17.7 -> 16.6, W2 5.61 -> 5.21, W3 23.4 -> 22.0;
// roundtrip_multi K = 5 on W1 58.7 -> 54.8; 4:2:0 1-2%; the AVX2 path 1-1.5%. (For the store's division by
// 255 this form measured slower, W1 21.5 -> 22.1 ms; one correction suffices there: to_pixel.) Without FMA,
// the division.
#if NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)
#define NNJ_FMA_DIVIDE 1
inline vf remainder_of(vf q, vf b, vf a) { return vf(_mm512_fmsub_ps(__m512(q), __m512(b), __m512(a))); }  // q b - a
inline vf corrected(vf r, vf y, vf q) { return vf(_mm512_fnmadd_ps(__m512(r), __m512(y), __m512(q))); }  // q - r y
#elif NNJPEG_SIMD_LANES == 8 && defined(__FMA__)
#define NNJ_FMA_DIVIDE 1
inline vf remainder_of(vf q, vf b, vf a) { return vf(_mm256_fmsub_ps(__m256(q), __m256(b), __m256(a))); }
inline vf corrected(vf r, vf y, vf q) { return vf(_mm256_fnmadd_ps(__m256(r), __m256(y), __m256(q))); }
#endif

inline Vec divide(Vec a, Vec b, Vec y) {
#if defined(NNJ_FMA_DIVIDE)
  vf q = a.v * y.v;  // each FMA below rounds once: remainder_of is exact, corrected the one rounding
  q = corrected(remainder_of(q, b.v, a.v), y.v, q);
  return Vec(corrected(remainder_of(q, b.v, a.v), y.v, q));
#else
  (void)y;
  return a / b;
#endif
}

// NaN -> 0, clamp to [0, 255]: v > 0 ? (v < 255 ? v : 255) : 0. max(v, +0) gives its second operand where v
// is NaN and for a zero of either sign, so min(max(v, +0), 255) is the same select, bitwise, in 2 instructions
// where GCC makes 4 of it (compares and blends). AMD Zen 5 guest, 2 threads, A/B in one process, medians:
// W1 float32 13.46 -> 13.13 ms, W2 4.20 -> 4.11, W3 16.44 -> 15.76.
inline Vec sanitize_255(Vec x) {
#if NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)
  // (zero-masked forms with every lane set: GCC 12 warns about the plain ones' undefined pass-through operand)
  const __mmask16 all = 0xFFFF;
  return Vec(vf(_mm512_maskz_min_ps(all, _mm512_maskz_max_ps(all, __m512(x.v), _mm512_setzero_ps()),
                                    _mm512_set1_ps(255.0f))));
#elif NNJPEG_SIMD_LANES == 8 && defined(__AVX__)
  return Vec(vf(_mm256_min_ps(_mm256_max_ps(__m256(x.v), _mm256_setzero_ps()), _mm256_set1_ps(255.0f))));
#else
  const vf zero = vf{}, top = vf{} + 255.0f;
  const vf inner = x.v < top ? x.v : top;
  return Vec(x.v > zero ? inner : zero);
#endif
}

inline Vec pass_unclamped(Vec px, Vec g) {
  const vf zero = vf{}, top = vf{} + 255.0f;
  return Vec((px.v < zero) | (px.v > top) ? zero : g.v);
}

// ---- Rows of pixels <-> lanes. A "pair" vector holds the 8-pixel row of lane i (8 lanes), or the rows of
// lanes i and i + 8 in its low and high halves (16 lanes). transpose_pairs turns the 8 pairs of one pixel row
// into 8 vectors whose lane j is pixel c of lane j's row, and back (it is its own inverse): an 8x8 transpose
// within each half, so a 16-lane vector needs no cross-half assembly.
constexpr int kHalves = kLanes / 8;

// Two-source shuffle masks that apply an 8-lane pattern (indices into a ++ b, 0..15) to each half.
constexpr int half0_index(int m) { return m < 8 ? m : m - 8 + kLanes; }
constexpr int half1_index(int m) { return m < 8 ? m + 8 : m + kLanes; }
#if NNJPEG_SIMD_LANES == 16
#define NNJ_HALF_MASK(a, b, c, d, e, f, g, h)                                                                  \
  vi{half0_index(a), half0_index(b), half0_index(c), half0_index(d), half0_index(e), half0_index(f),           \
     half0_index(g), half0_index(h), half1_index(a), half1_index(b), half1_index(c), half1_index(d),           \
     half1_index(e), half1_index(f), half1_index(g), half1_index(h)}
#else
#define NNJ_HALF_MASK(a, b, c, d, e, f, g, h) vi{a, b, c, d, e, f, g, h}
#endif

inline void transpose_pairs(vf* r) {
  const vi lo = NNJ_HALF_MASK(0, 8, 1, 9, 4, 12, 5, 13), hi = NNJ_HALF_MASK(2, 10, 3, 11, 6, 14, 7, 15);
  const vi slo = NNJ_HALF_MASK(0, 1, 8, 9, 4, 5, 12, 13), shi = NNJ_HALF_MASK(2, 3, 10, 11, 6, 7, 14, 15);
  const vi plo = NNJ_HALF_MASK(0, 1, 2, 3, 8, 9, 10, 11), phi = NNJ_HALF_MASK(4, 5, 6, 7, 12, 13, 14, 15);
  vf t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = __builtin_shuffle(r[2 * i], r[2 * i + 1], lo);
    t[2 * i + 1] = __builtin_shuffle(r[2 * i], r[2 * i + 1], hi);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = __builtin_shuffle(t[4 * i], t[4 * i + 2], slo);
    u[4 * i + 1] = __builtin_shuffle(t[4 * i], t[4 * i + 2], shi);
    u[4 * i + 2] = __builtin_shuffle(t[4 * i + 1], t[4 * i + 3], slo);
    u[4 * i + 3] = __builtin_shuffle(t[4 * i + 1], t[4 * i + 3], shi);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shuffle(u[i], u[i + 4], plo);
    r[i + 4] = __builtin_shuffle(u[i], u[i + 4], phi);
  }
}
#undef NNJ_HALF_MASK

// The pair of rows that start at a and b (b is ignored with 8 lanes), element stride sx, as floats
// (uint8 as 0..255, float as stored); and back (b_live: whether b's lane is stored at all). Contiguous rows
// load and store as whole vectors (intrinsics with 16 lanes: the halves go through no memory); strided ones
// element by element.
#if NNJPEG_SIMD_LANES == 16 && !(defined(__AVX512F__) && defined(__AVX512DQ__))
#error "16 lanes need AVX-512 F and DQ"
#endif
typedef uint8_t vu8 __attribute__((vector_size(kLanes)));

template <typename IO>
inline void gather_pair(const IO* a, const IO* b, int64_t sx, IO* dst) {
  for (int h = 0; h < kHalves; ++h)
    for (int i = 0; i < 8; ++i) dst[8 * h + i] = (h == 0 ? a : b)[i * sx];
}
template <typename IO>
inline void scatter_pair(const IO* src, IO* a, IO* b, bool b_live, int64_t sx) {
  for (int h = 0; h < (b_live ? kHalves : 1); ++h)
    for (int i = 0; i < 8; ++i) (h == 0 ? a : b)[i * sx] = src[8 * h + i];
}

inline vf load_pair(const float* a, const float* b, int64_t sx) {
  vf v;
  if (sx == 1) {
#if NNJPEG_SIMD_LANES == 16
    return vf(_mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(a)), _mm256_loadu_ps(b), 1));
#else
    (void)b;
    memcpy(&v, a, 32);
    return v;
#endif
  }
  float t[kLanes];
  gather_pair(a, b, sx, t);
  memcpy(&v, t, sizeof v);
  return v;
}
inline vf load_pair(const uint8_t* a, const uint8_t* b, int64_t sx) {
  vu8 bytes;
#if NNJPEG_SIMD_LANES == 8 && defined(__AVX2__)
  // GCC scalarises the conversions of an 8-byte vector below (a shift, a zero-extend and an insert per byte);
  // vpmovzxbd gives the same integers. AMD EPYC AVX2 guest, 2 threads, A/B in one process, medians: W1 uint8
  // 66 -> 47 ms, W2 21.5 -> 15, W3 73 -> 47 (with store_pair below).
  if (sx == 1) {
    (void)b;
    return vf(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)))));
  }
#endif
  if (sx == 1) {
#if NNJPEG_SIMD_LANES == 16
    bytes = vu8(_mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)),
                                   _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
    // vpmovzxbd and vcvtdq2ps written out: in an unrolled loop GCC scalarises the generic conversions below
    // (a byte extract per lane). AMD Zen 5 guest, 2 threads, A/B in one process, medians, with the unrolled
    // load_lane_rows: uint8 W1 11.35 -> 10.38 ms, W2 4.91 -> 4.66, W3 18.2 -> 16.4; 4:2:0 W1 12.40 -> 11.94,
    // W2 5.88 -> 5.39, W3 17.9 -> 16.8. (Zero-masked forms, every lane set: GCC 12 warns about the plain ones.)
    const __mmask16 all = 0xFFFF;
    return vf(_mm512_maskz_cvtepi32_ps(all, _mm512_maskz_cvtepu8_epi32(all, __m128i(bytes))));
#else
    (void)b;
    memcpy(&bytes, a, 8);
#endif
  } else {
    uint8_t t[kLanes];
    gather_pair(a, b, sx, t);
    memcpy(&bytes, t, sizeof bytes);
  }
  // Through int32 (zero-extend, then convert): GCC scalarises a direct uint8 -> float conversion.
  return __builtin_convertvector(__builtin_convertvector(bytes, vi), vf);
}
// stream: streaming stores (32-byte aligned rows, streaming_stores.h); the caller fences when done.
inline void store_pair(vf v, float* a, float* b, bool b_live, int64_t sx, bool stream = false) {
  if (sx == 1) {
#if NNJPEG_SIMD_LANES == 16
    // (the zero-masked extract: GCC 12 warns about the unmasked one's undefined pass-through operand)
    const __m256 high = _mm512_maskz_extractf32x8_ps(__mmask8(0xFF), __m512(v), 1);
    if (stream) {
      _mm256_stream_ps(a, _mm512_maskz_extractf32x8_ps(__mmask8(0xFF), __m512(v), 0));
      if (b_live) _mm256_stream_ps(b, high);
      return;
    }
    memcpy(a, &v, 32);  // the low half
    if (b_live) _mm256_storeu_ps(b, high);
#else
    (void)b, (void)b_live;
#if defined(__AVX__)
    if (stream) {
      _mm256_stream_ps(a, __m256(v));
      return;
    }
#else
    (void)stream;
#endif
    memcpy(a, &v, 32);
#endif
    return;
  }
  float t[kLanes];
  memcpy(t, &v, sizeof t);
  scatter_pair(t, a, b, b_live, sx);
}
inline void store_pair(vf v, uint8_t* a, uint8_t* b, bool b_live, int64_t sx, bool = false) {  // integers 0..255
#if NNJPEG_SIMD_LANES == 8 && defined(__AVX2__)
  if (sx == 1) {  // as load_pair: packs instead of the scalarised conversion (0..255: nothing saturates)
    (void)b, (void)b_live;
    const __m256i words = _mm256_cvttps_epi32(__m256(v));
    const __m128i halves = _mm_packus_epi32(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(a), _mm_packus_epi16(halves, halves));
    return;
  }
#endif
  const vu8 bytes = __builtin_convertvector(__builtin_convertvector(v, vi), vu8);
  if (sx == 1) {
#if NNJPEG_SIMD_LANES == 16
    const __m128i both = __m128i(bytes);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(a), both);
    if (b_live) _mm_storel_epi64(reinterpret_cast<__m128i*>(b), _mm_unpackhi_epi64(both, both));
#else
    (void)b, (void)b_live;
    memcpy(a, &bytes, 8);
#endif
    return;
  }
  uint8_t t[kLanes];
  memcpy(t, &bytes, sizeof t);
  scatter_pair(t, a, b, b_live, sx);
}

// 8 contiguous pixels at rows[j] (kLanes row pointers) -> cols[c] lane j = pixel c of lane j's row.
template <typename IO>
inline void load_lane_rows_at(const IO* const* rows, Vec* cols) {
  vf r[8];
  for (int i = 0; i < 8; ++i) r[i] = load_pair(rows[i], rows[kHalves == 2 ? i + 8 : i], 1);
  transpose_pairs(r);
  for (int c = 0; c < 8; ++c) cols[c] = Vec(r[c]);
}
// Pixel row `off` (an element offset) of every lane's block, whose top-left pixel is base[j] (kLanes
// pointers), element stride sx, into lanes as above; and back: lanes < count are stored. (Not written as
// load_lane_rows_at over a pointer array: that measured 13% slower on the W1 forward.)
template <typename IO>
inline void load_lane_rows(const IO* const* base, int64_t off, int64_t sx, Vec* cols) {
  vf r[8];
  // Dense rows with a constant stride: the loop unrolled (uint8 pairs convert with intrinsics, load_pair).
  if (sx == 1) {
    for (int i = 0; i < 8; ++i) r[i] = load_pair(base[i] + off, base[kHalves == 2 ? i + 8 : i] + off, 1);
  } else {
    for (int i = 0; i < 8; ++i) r[i] = load_pair(base[i] + off, base[kHalves == 2 ? i + 8 : i] + off, sx);
  }
  transpose_pairs(r);
  for (int c = 0; c < 8; ++c) cols[c] = Vec(r[c]);
}
#if NNJPEG_SIMD_LANES == 16
// Integers 0..255 in a float vector -> their 16 bytes (lane i in byte i).
inline __m128i lane_bytes(vf v) { return __m128i(__builtin_convertvector(__builtin_convertvector(v, vi), vu8)); }

// A 16-byte streaming store (dst 16-byte aligned).
inline void stream16(uint8_t* dst, __m128i bytes) { _mm_stream_si128(reinterpret_cast<__m128i*>(dst), bytes); }

#endif

template <typename IO>
inline void store_lane_rows(const Vec* cols, IO* const* base, int64_t off, int64_t sx, int count,
                            bool stream = false) {
  vf r[8];
  for (int c = 0; c < 8; ++c) r[c] = cols[c].v;
  transpose_pairs(r);
  // A full group's dense rows: the loop unrolled with constant arguments, the pairs kept in registers. (The
  // general loop spilled them and tested the stride and count per pair. AMD Zen 5 guest, 2 threads, A/B in one
  // process, medians, with the float load above: float32 W1 13.53 -> 12.84 ms, W2 6.33 -> 5.72, W3 22.4 ->
  // 20.4; roundtrip_multi K = 5 W1 38.6 -> 34.5, W2 16.5 -> 15.1, W3 60.3 -> 55.1; uint8 W1 17.3 -> 15.3, W3
  // 25.9 -> 18.1, K = 5 W1 60.0 -> 42.6, W3 92.0 -> 52.3; the "ste" forward W1 15.1 -> 13.8.)
  if (count == kLanes && sx == 1) {
    for (int i = 0; i < 8; ++i) store_pair(r[i], base[i] + off, base[kHalves == 2 ? i + 8 : i] + off, true, 1, stream);
    return;
  }
  for (int i = 0; i < 8 && i < count; ++i)
    store_pair(r[i], base[i] + off, base[kHalves == 2 ? i + 8 : i] + off, i + 8 < count, sx, stream);
}

// Loaded pixel values -> 0..255 scale (load_255 of pixel_io.h), and 0..255 -> stored values (store_255).
inline Vec from_pixel(Vec v, const uint8_t*) { return v; }
inline Vec from_pixel(Vec v, const float*) { return sanitize_255(v * Vec(255.0f)); }
// The float output x / 255 of x = sanitize_255(v) in [0, 255]: with FMA, x * (1 / 255) and one correction by
// the exact remainder, which gives the division's bits for every float in [0, 255] (all 1.13e9 of them are
// checked through _C.cpu_store_division_mismatches, tests/test_cpu_isa_parity.py). Intel Sapphire Rapids
// guest, in-process A/B, 2 threads, medians: W1 float32 21.8 -> 21.3 ms, W2 7.52 -> 7.23, W3 27.5 -> 27.0,
// roundtrip_multi K = 5 on W1 54.7 -> 53.4. (The quantizer's general divide, two corrections, measured slower
// here.)
inline Vec sanitized_to_pixel(Vec x255, const float*) {  // x255: sanitize_255's result
#if defined(NNJ_FMA_DIVIDE)
  const vf x = x255.v, y = broadcast(1.0f / 255.0f), q = x * y;
  return Vec(corrected(remainder_of(q, broadcast(255.0f), x), y, q));
#else
  return x255 / Vec(255.0f);
#endif
}
inline Vec sanitized_to_pixel(Vec x255, const uint8_t*) { return round_half_even(x255); }
template <typename IO>
inline Vec to_pixel(Vec v255, const IO* io) { return sanitized_to_pixel(sanitize_255(v255), io); }
