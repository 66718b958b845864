// The prepared quantization divisors (quantize.h, QuantDivisors) of the tables this thread used last, for the
// SIMD forward: with their reciprocals, so that it divides by multiplying (divide, simd_vec.h), and prepared
// once per table instead of once per group, channel and level. (On the Intel Sapphire Rapids guest the
// scalar quant_divisor math and its broadcasts were ~30% of forward_group's perf samples, yet removing them
// alone changed no timing: they filled slots the divisions left idle.) Included only inside an anonymous
// namespace of an ISA translation unit (each instruction set keeps its own copy, as with simd_vec.h).
#pragma once

// A table is found by its address and checked against its 64 steps, so an entry is never stale: it can
// outlive a call (the same address may hold other steps next time) and serves every work item of a thread.
// The steps cannot change during a call, so an entry checked in this call (call: RoundtripParams::call_id, 0
// for none) is not compared again: the comparison of 256 bytes, twice per group and level, was 2-3% of a
// roundtrip_multi K = 5 call (Intel Sapphire Rapids guest, A/B in one process: skipping it outright, W1
// 65.2 -> 63.9 ms, W3 88.7 -> 85.7; with the call ids, W1 63.1 -> 61.6, W3 79.9 -> 79.0, 4:2:0 W1 30.7 -> 29.9,
// one level 4:4:4 unchanged).
class DivisorCache {
 public:
  // The prepared divisors of `steps`; valid until the next call that misses (the returned entry is never
  // the one a miss replaces next, so two lookups in a row, luma then chroma, may both be used).
  const QuantDivisors<float>& operator()(const float* steps, uint64_t call) {
    for (int e = 0; e < kEntries; ++e) {
      if (address_[e] != steps) continue;
      if (call != 0 && checked_in_[e] == call) return use(e);
      if (memcmp(steps_[e], steps, sizeof steps_[e]) == 0) {
        checked_in_[e] = call;
        return use(e);
      }
    }
    int e = next_;
    if (e == last_) e = (e + 1) % kEntries;
    next_ = (e + 1) % kEntries;
    address_[e] = steps;
    checked_in_[e] = call;
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
  uint64_t checked_in_[kEntries] = {};  // the call that last compared (or prepared) the entry's steps
  float steps_[kEntries][64] = {};
  QuantDivisors<float> prepared_[kEntries];
  int next_ = 0, last_ = -1;
};

inline DivisorCache& thread_divisor_cache() {
  static thread_local DivisorCache cache;
  return cache;
}
