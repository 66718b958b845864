// Stand-in for the CUDA kernels in a CPU-only build (no nvcc found, or NNJPEG_CUDA=OFF).
#include "nnjpeg/kernels.h"

namespace nnjpeg {
namespace cuda {

bool built() { return false; }
std::string roundtrip_forward(const RoundtripParams&) { return "nnjpeg_cuda was built without CUDA"; }
std::string roundtrip_backward(const RoundtripParams&) { return "nnjpeg_cuda was built without CUDA"; }
std::string ste_backward(const SteBackwardParams&) { return "nnjpeg_cuda was built without CUDA"; }

}  // namespace cuda
}  // namespace nnjpeg
