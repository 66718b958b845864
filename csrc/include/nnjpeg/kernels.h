// The two kernels behind the binding. Same parameters, same semantics; see params.h.
#pragma once

#include <string>
#include <vector>

#include "params.h"

namespace nnjpeg {
struct SteBackwardParams;  // ste_backward.h

namespace cpu {
// Forward round trip at p.levels levels into p.output. p.workspace is required for 4:2:0.
void roundtrip_forward(const RoundtripParams& p);
// Backward ("ste"/"smooth", 4:4:4 only) into p.grad_input.
void roundtrip_backward(const RoundtripParams& p);
// "ste" backward for 4:4:4 / grayscale / plain RGB from the saved output (ste_backward.h).
void ste_backward(const SteBackwardParams& s);
// The CPU code path: "scalar" (the shared block math) or a SIMD path ("generic", "avx2", "avx512"),
// chosen at run time (csrc/cpu/cpu_isa.h). Every path gives bitwise identical results.
std::string isa_in_use();
std::vector<std::string> supported_isas();
bool select_isa(const std::string& name);  // "auto" = best supported; false if unknown or unsupported
// Tests: q[i] = a[i] / b through the current path's quantizer division (the SIMD paths divide by multiplying
// by 1 / b; each must give the bits of the IEEE division, as the scalar path does).
void divide_like_quantizer(const float* a, float* q, int64_t n, float b);
// Tests: how many floats x of [0, 255] the current path stores as a float output other than x / 255 (0 on
// every path: the SIMD paths multiply by 1 / 255 and correct).
int64_t store_division_mismatches();
// Whether roundtrip_forward(p) stores p.output with streaming stores on the SIMD path (csrc/cpu/streaming_stores.h).
bool streams_output(const RoundtripParams& p);
// Whether the CPU "ste" backward would store p.grad_input with streaming stores (the same conditions).
bool streams_grad_input(const RoundtripParams& p);
}  // namespace cpu

namespace cuda {
// True when the CUDA kernels were compiled into this build.
bool built();
// Each returns an empty string on success, else the CUDA error message.
std::string roundtrip_forward(const RoundtripParams& p);
std::string roundtrip_backward(const RoundtripParams& p);
std::string ste_backward(const SteBackwardParams& s);
}  // namespace cuda
}  // namespace nnjpeg
