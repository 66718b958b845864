// The prepared quantization divisors (quantize.h, QuantDivisors) of the tables this thread used last, for the
// SIMD forward: with their reciprocals, so that it divides by multiplying (divide, simd_vec.h), and prepared
// once per table instead of once per group, channel and level. (On the Intel Sapphire Rapids guest the
// scalar quant_divisor math and its broadcasts were ~30% of forward_group's perf samples, yet removing them
// alone changed no timing: they filled slots the divisions left idle.) Included only inside an anonymous
// namespace of an ISA translation unit (each instruction set keeps its own copy, as with simd_vec.h).
#pragma once

// A table is found by its address and checked against its 64 steps, so an entry is never stale: it can
// outlive a call (the same address may hold other steps next time) and serves every work item of a thread.
class DivisorCache {
 public:
  // The prepared divisors of `steps`; valid until the next call that misses (the returned entry is never
  // the one a miss replaces next, so two lookups in a row, luma then chroma, may both be used).
  const QuantDivisors<float>& operator()(const float* steps) {
    for (int e = 0; e < kEntries; ++e)
      if (address_[e] == steps && memcmp(steps_[e], steps, sizeof steps_[e]) == 0) return use(e);
    int e = next_;
    if (e == last_) e = (e + 1) % kEntries;
    next_ = (e + 1) % kEntries;
    address_[e] = steps;
    memcpy(steps_[e], steps, sizeof steps_[e]);
    prepare_divisors(steps, prepared_[e]);
    return use(e);
  }

 private:
  static constexpr int kEntries = 16;  // two tables per level: roundtrip_multi up to K = 8 without misses
  const QuantDivisors<float>& use(int e) {
    last_ = e;
    return prepared_[e];
  }
  const float* address_[kEntries] = {};
  float steps_[kEntries][64] = {};
  QuantDivisors<float> prepared_[kEntries];
  int next_ = 0, last_ = -1;
};

inline DivisorCache& thread_divisor_cache() {
  static thread_local DivisorCache cache;
  return cache;
}
