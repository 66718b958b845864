// CUDA driver of the "ste" backward without recomputation (ste_backward.h): one thread per 8x8 block, a
// grid-stride loop with 64-bit item indices (launch.h, replayed on the host by _C.cuda_grid_visits).
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

#include "nnjpeg/dispatch.h"
#include "nnjpeg/kernels.h"
#include "nnjpeg/launch.h"
#include "nnjpeg/ste_backward.h"

namespace nnjpeg {
namespace cuda {
namespace {

// At most 64 registers (8 blocks of 128 threads per SM): the common path only streams memory and wants
// occupancy; the rare recompute path spills instead (ptxas, sm_90, float: 118 registers and no spills
// without the bound, 64 and ~0.5 KB of spills with it). Not yet timed on a GPU.
template <typename IO, typename T>
__global__ void __launch_bounds__(kThreadsPerBlock, 8)
    ste_backward_kernel(const SteBackwardParams s, int64_t items, int64_t blocks_y, int64_t blocks_x) {
  const int64_t stride = grid_item_stride(gridDim.x, blockDim.x);
  for (int64_t item = grid_first_item(blockIdx.x, threadIdx.x, blockDim.x); item < items; item += stride)
    ste_backward_block<IO, T>(s, block_coord(item, blocks_y, blocks_x));
}

}  // namespace

std::string ste_backward(const SteBackwardParams& s) {
  const RoundtripParams& p = s.p;
  const Geometry g = geometry(p);
  const int64_t items = p.n * g.blocks_y * g.blocks_x;
  if (items == 0) return std::string();
  int previous = 0;
  cudaError_t err = cudaGetDevice(&previous);
  if (err == cudaSuccess) err = cudaSetDevice(p.device);
  if (err == cudaSuccess) {
    const LaunchConfig c = launch_config(items);
    dispatch_dtype(p.dtype, [&](auto io, auto compute) {
      using IO = decltype(io);
      using T = decltype(compute);
      if constexpr (!std::is_same<IO, uint8_t>::value) {  // uint8 is rejected by the binding
        ste_backward_kernel<IO, T><<<dim3(unsigned(c.blocks)), dim3(unsigned(c.threads)), 0,
                                     static_cast<cudaStream_t>(p.stream)>>>(s, items, g.blocks_y, g.blocks_x);
        err = cudaGetLastError();
      }
    });
  }
  if (previous != p.device) cudaSetDevice(previous);
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace nnjpeg
