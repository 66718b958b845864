// Parameters of one round-trip call, shared by the CPU and CUDA kernels.
//
// The Python layer validates every tensor (dtype, shape, device, strides) before it fills this struct;
// the binding re-checks what can be checked without the tensors (non-null pointers, positive sizes,
// enum ranges, strides that stay inside the stated extents).
#pragma once

#include <stdint.h>

#include "hd.h"

namespace nnjpeg {

enum DType : int { kUInt8 = 0, kFloat32 = 1, kFloat64 = 2 };
enum Subsampling : int { k444 = 0, k420 = 1 };
enum ColorMode : int { kYCbCr = 0, kRGB = 1 };  // ignored for 1-channel (grayscale) images
enum Rounding : int { kRoundHalfEven = 0, kSmoothRound = 1 };  // "smooth": round(t) + (t - round(t))^3
// Bits of a block's clamp summary (RoundtripParams::clamp_summary), over its pixels inside the image and its
// channels, at one level: kSomeClamped, a decoded pixel (0..255 scale) strictly outside [0, 255]; kSomeOnBound,
// a decoded pixel inside [0, 255] whose stored value is exactly 0 or 1 all the same (the output alone cannot
// tell it from a clamped one).
enum ClampSummaryBits : int { kSomeClamped = 1, kSomeOnBound = 2 };

struct RoundtripParams {
  const void* input = nullptr;  // (N, C, H, W) pixels, element strides in_stride; uint8 0..255 or float 0..1
  void* output = nullptr;       // (K, N, C, H, W) pixels, element strides out_stride, same dtype as input
  const float* tables = nullptr;  // (K, N, 2, 64) quantization steps (luma, chroma), natural order
  void* workspace = nullptr;  // 4:2:0 only: (K, N, 2, chroma_h, chroma_w) decoded chroma, contiguous,
                              // float for uint8/float32 input, double for float64 input

  int64_t n = 0, c = 0, h = 0, w = 0;  // batch, channels (1 or 3), height, width
  int64_t levels = 1;                  // K: quality levels sharing one forward DCT
  int64_t in_stride[4] = {0, 0, 0, 0};        // N, C, H, W
  int64_t out_stride[5] = {0, 0, 0, 0, 0};    // K, N, C, H, W
  int64_t table_stride_level = 0;  // elements between levels' tables (0 broadcasts)
  int64_t table_stride_image = 0;  // elements between images' tables (0 broadcasts)

  int dtype = kFloat32;
  int subsampling = k444;
  int color = kYCbCr;
  int rounding = kRoundHalfEven;

  // Backward only: grad_output (K, N, C, H, W) uses out_stride; grad_input (N, C, H, W) grad_in_stride.
  const void* grad_output = nullptr;
  void* grad_input = nullptr;
  int64_t grad_in_stride[4] = {0, 0, 0, 0};
  void* workspace2 = nullptr;  // 4:2:0 backward: (K, N, 2, H, W) gradient wrt the upsampled Cb/Cr, contiguous,
                               // compute type (float or double) like workspace

  // Forward, optional: float[3] that receives {min, max, 1} of the float input pixels (min and max NaN when
  // any pixel is NaN) when the kernel's path folds validation into its read of the input (the CPU SIMD
  // 4:4:4 float32 path); left untouched otherwise, so the caller checks element 2 and validates itself.
  float* input_range = nullptr;

  // Forward, optional (CPU kernel, float32/float64, no 4:2:0): (K, N, blocks_y, blocks_x) contiguous bytes, the
  // clamp summary of every block (ClampSummaryBits): what the "ste" backward needs to mask the gradient
  // without recomputing the round trip (ste_backward.h).
  uint8_t* clamp_summary = nullptr;
  // Forward, optional, with clamp_summary: (K, N, C, blocks_y, blocks_x) contiguous words, the pass mask of
  // each block and channel: bit r * 8 + c set where the decoded pixel of row r, column c was not clamped
  // (pass_unclamped lets its gradient through; bits of padding pixels set), for every block: all ones where
  // the summary has no kSomeClamped. With it the "ste" backward masks the gradient without reading the
  // output or recomputing a block (ste_backward.h).
  uint64_t* pass_mask = nullptr;

  // CPU kernel, set by its driver (csrc/cpu/streaming_stores.h), never by a caller: store the float32 output
  // with streaming (non-temporal) stores.
  bool stream_output = false;
  // CPU kernel, set by its driver: a number no other call of this process gets (csrc/cpu/divisor_cache.h).
  uint64_t call_id = 0;

  int num_threads = 1;    // CPU kernel: worker threads
  int device = 0;         // CUDA kernel: device ordinal
  void* stream = nullptr; // CUDA kernel: cudaStream_t to launch on
};

// Padded plane sizes: whole 8x8 blocks (16x16 macro-blocks with 4:2:0).
struct Geometry {
  int64_t blocks_y, blocks_x;          // luma (or every channel's) 8x8 blocks
  int64_t chroma_h, chroma_w;          // 4:2:0: padded chroma plane (multiple of 8)
  int64_t chroma_valid_h, chroma_valid_w;  // 4:2:0: ceil(H/2), ceil(W/2): samples the upsampler sees
};

NNJ_HD Geometry geometry(const RoundtripParams& p) {
  Geometry g;
  g.blocks_y = (p.h + 7) / 8;
  g.blocks_x = (p.w + 7) / 8;
  g.chroma_h = (p.h + 15) / 16 * 8;
  g.chroma_w = (p.w + 15) / 16 * 8;
  g.chroma_valid_h = (p.h + 1) / 2;
  g.chroma_valid_w = (p.w + 1) / 2;
  return g;
}

// True when the chroma planes are subsampled (3 channels, YCbCr, 4:2:0).
NNJ_HD bool uses_420(const RoundtripParams& p) {
  return p.c == 3 && p.color == kYCbCr && p.subsampling == k420;
}

}  // namespace nnjpeg
