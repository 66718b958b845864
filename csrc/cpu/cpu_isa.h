// Which CPU code path runs: the scalar kernel (the shared block math with T = float/double, the oracle the
// CUDA kernel also uses) or the SIMD path built for an instruction set, chosen at run time from what the
// processor supports (no build-time -march), and overridable for tests and benchmarks.
#pragma once

#include <string>

namespace nnjpeg {
namespace cpu {

enum class Isa : int { kScalar = 0, kGeneric = 1, kAvx2 = 2, kAvx512 = 3 };

// The path in use: the last select_isa() (kernels.h), else NNJPEG_CPU_ISA from the environment, else the
// best one the processor supports.
Isa current_isa();
std::string isa_name(Isa isa);

}  // namespace cpu
}  // namespace nnjpeg
