// Planted bugs for scripts/sanitize.sh: proof that the sanitizer build catches memory errors and undefined
// behaviour in the real CPU kernel. Built only in the sanitizer build (CMake option NNJPEG_SANITIZE=ON),
// never installed or shipped; the Python binding has no entry point that can do this.
//
// Usage: nnjpeg_planted_oob ok | oob | ubsan
//   ok     one correct 8x8 grayscale round trip through nnjpeg::cpu::roundtrip_forward; exits 0.
//   oob    the same call with an output buffer one byte short: the kernel's store of the last pixel is a
//          heap-buffer-overflow WRITE, which AddressSanitizer must report (non-zero exit).
//   ubsan  a height of INT64_MAX, so that the kernel's block count (h + 7) / 8 overflows int64 before any
//          pixel is read: UndefinedBehaviorSanitizer must report it (non-zero exit: -fno-sanitize-recover).
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "nnjpeg/kernels.h"
#include "nnjpeg/params.h"

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "ok";
  if (strcmp(mode, "ok") != 0 && strcmp(mode, "oob") != 0 && strcmp(mode, "ubsan") != 0) {
    fprintf(stderr, "usage: %s ok|oob|ubsan\n", argv[0]);
    return 2;
  }
  std::vector<uint8_t> input(64);
  for (int i = 0; i < 64; ++i) input[size_t(i)] = uint8_t(i * 4);
  std::vector<float> steps(128, 16.0f);  // (luma, chroma) x 64
  const size_t out_elems = strcmp(mode, "oob") == 0 ? 63 : 64;  // the planted bug: one byte short
  uint8_t* output = new uint8_t[out_elems];

  nnjpeg::RoundtripParams p;
  p.input = input.data();
  p.output = output;
  p.tables = steps.data();
  p.n = 1;
  p.c = 1;
  p.h = 8;
  p.w = 8;
  p.levels = 1;
  const int64_t in_stride[4] = {64, 64, 8, 1}, out_stride[5] = {64, 64, 64, 8, 1};
  memcpy(p.in_stride, in_stride, sizeof in_stride);
  memcpy(p.out_stride, out_stride, sizeof out_stride);
  if (strcmp(mode, "ubsan") == 0) p.h = INT64_MAX;  // the planted bug: (h + 7) overflows
  p.dtype = nnjpeg::kUInt8;
  p.num_threads = 1;

  nnjpeg::cpu::roundtrip_forward(p);
  unsigned sum = 0;
  for (size_t i = 0; i < out_elems; ++i) sum += output[i];
  printf("planted_oob %s: round trip done, pixel sum %u\n", mode, sum);
  delete[] output;
  return 0;
}
