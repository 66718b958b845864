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
typedef float v8f __attribute__((vector_size(32)));  // one row of 8 pixels of a block
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint8_t v8u8 __attribute__((vector_size(8)));

struct Vec {
  vf v;
  Vec() = default;
  explicit Vec(vf x) : v(x) {}
  Vec(float s) : v(vf{} + s) {}  // broadcast: T(x) in the shared math
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

inline Vec sanitize_255(Vec x) {  // NaN -> 0, clamp to [0, 255]: v > 0 ? (v < 255 ? v : 255) : 0
  const vf zero = vf{}, top = vf{} + 255.0f;
  const vf inner = x.v < top ? x.v : top;
  return Vec(x.v > zero ? inner : zero);
}

inline Vec pass_unclamped(Vec px, Vec g) {
  const vf zero = vf{}, top = vf{} + 255.0f;
  return Vec((px.v < zero) | (px.v > top) ? zero : g.v);
}

// In-place 8x8 transpose of r[0..7] (r[i][j] <- r[j][i]): unpack, shuffle, then swap 128-bit halves.
inline void transpose8(v8f* r) {
  const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
  const v8i slo = {0, 1, 8, 9, 4, 5, 12, 13}, shi = {2, 3, 10, 11, 6, 7, 14, 15};
  const v8i plo = {0, 1, 2, 3, 8, 9, 10, 11}, phi = {4, 5, 6, 7, 12, 13, 14, 15};
  v8f t[8], u[8];
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

// rows[j] = row of block (lane) j -> cols[c] = column c across the lanes; and back.
inline void rows_to_cols(v8f* rows, Vec* cols) {
  for (int h = 0; h < kLanes / 8; ++h) transpose8(rows + 8 * h);
  for (int c = 0; c < 8; ++c)
    for (int h = 0; h < kLanes / 8; ++h) memcpy(reinterpret_cast<char*>(&cols[c].v) + 32 * h, &rows[8 * h + c], 32);
}
inline void cols_to_rows(const Vec* cols, v8f* rows) {
  for (int c = 0; c < 8; ++c)
    for (int h = 0; h < kLanes / 8; ++h) memcpy(&rows[8 * h + c], reinterpret_cast<const char*>(&cols[c].v) + 32 * h, 32);
  for (int h = 0; h < kLanes / 8; ++h) transpose8(rows + 8 * h);
}

// 8 pixels of a row (element stride sx) as floats (uint8 as 0..255, float as stored), and back.
inline v8f load_row(const uint8_t* src, int64_t sx) {
  v8u8 b;
  if (sx == 1) {
    memcpy(&b, src, 8);
  } else {
    for (int i = 0; i < 8; ++i) b[i] = src[i * sx];
  }
  // Through int32 (zero-extend, then convert): GCC scalarises a direct uint8 -> float conversion.
  return __builtin_convertvector(__builtin_convertvector(b, v8i), v8f);
}
inline v8f load_row(const float* src, int64_t sx) {
  v8f r;
  if (sx == 1) {
    memcpy(&r, src, 32);
  } else {
    for (int i = 0; i < 8; ++i) r[i] = src[i * sx];
  }
  return r;
}
inline void store_row(v8f v, float* dst, int64_t sx) {
  if (sx == 1) {
    memcpy(dst, &v, 32);
  } else {
    for (int i = 0; i < 8; ++i) dst[i * sx] = v[i];
  }
}
inline void store_row(v8f v, uint8_t* dst, int64_t sx) {  // v holds integers 0..255
  const v8u8 b = __builtin_convertvector(__builtin_convertvector(v, v8i), v8u8);
  if (sx == 1) {
    memcpy(dst, &b, 8);
  } else {
    for (int i = 0; i < 8; ++i) dst[i * sx] = b[i];
  }
}

// Loaded pixel values -> 0..255 scale (load_255 of pixel_io.h), and 0..255 -> stored values (store_255).
inline Vec from_pixel(Vec v, const uint8_t*) { return v; }
inline Vec from_pixel(Vec v, const float*) { return sanitize_255(v * Vec(255.0f)); }
inline Vec to_pixel(Vec v255, const float*) { return sanitize_255(v255) / Vec(255.0f); }
inline Vec to_pixel(Vec v255, const uint8_t*) { return round_half_even(sanitize_255(v255)); }
