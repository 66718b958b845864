// pybind11 module nnjpeg_cuda._C: the only file that includes pybind11.
//
// Python validates tensors and passes raw pointers, sizes, strides and the CUDA stream (see
// python/nnjpeg_cuda/_kernel.py). This file re-checks everything that can be checked without the
// tensors and turns any violation into a ValueError, so a wrong call never reaches a kernel.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <type_traits>
#include <vector>

#include "nnjpeg/kernels.h"
#include "nnjpeg/launch.h"
#include "nnjpeg/params.h"
#include "nnjpeg/dispatch.h"
#include "nnjpeg/ste_backward.h"
#include "nnjpeg/tile_420.h"
#include "nnjpeg/tile_444.h"
#include "cpu/output_cache.h"

namespace py = pybind11;
using nnjpeg::RoundtripParams;

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw py::value_error("nnjpeg_cuda._C: " + what);
}

template <size_t N>
void copy_strides(const std::array<int64_t, N>& src, int64_t* dst, const char* name) {
  for (size_t i = 0; i < N; ++i) {
    require(src[i] >= 0, std::string(name) + " must be non-negative");
    dst[i] = src[i];
  }
}

RoundtripParams make_params(uintptr_t input, uintptr_t output, uintptr_t tables, uintptr_t workspace,
                            const std::array<int64_t, 4>& shape, int64_t levels,
                            const std::array<int64_t, 4>& in_strides, const std::array<int64_t, 5>& out_strides,
                            const std::array<int64_t, 2>& table_strides, int dtype, int subsampling, int color,
                            int rounding, int num_threads, int device, uintptr_t stream) {
  RoundtripParams p;
  p.n = shape[0];
  p.c = shape[1];
  p.h = shape[2];
  p.w = shape[3];
  require(p.n >= 0, "batch size must be >= 0");
  require(p.c == 1 || p.c == 3, "channels must be 1 or 3");
  require(p.h >= 1 && p.w >= 1, "height and width must be >= 1");
  require(levels >= 1, "levels must be >= 1");
  require(dtype >= nnjpeg::kUInt8 && dtype <= nnjpeg::kFloat64, "unknown dtype code");
  require(subsampling == nnjpeg::k444 || subsampling == nnjpeg::k420, "unknown subsampling code");
  require(color == nnjpeg::kYCbCr || color == nnjpeg::kRGB, "unknown colour mode code");
  require(rounding == nnjpeg::kRoundHalfEven || rounding == nnjpeg::kSmoothRound, "unknown rounding code");
  require(num_threads >= 1, "num_threads must be >= 1");
  require(input != 0 && output != 0 && tables != 0, "null input, output or table pointer");
  p.levels = levels;
  p.input = reinterpret_cast<const void*>(input);
  p.output = reinterpret_cast<void*>(output);
  p.tables = reinterpret_cast<const float*>(tables);
  p.workspace = reinterpret_cast<void*>(workspace);
  copy_strides(in_strides, p.in_stride, "input strides");
  copy_strides(out_strides, p.out_stride, "output strides");
  require(table_strides[0] >= 0 && table_strides[1] >= 0, "table strides must be non-negative");
  p.table_stride_level = table_strides[0];
  p.table_stride_image = table_strides[1];
  p.dtype = dtype;
  p.subsampling = subsampling;
  p.color = color;
  p.rounding = rounding;
  p.num_threads = num_threads;
  p.device = device;
  p.stream = reinterpret_cast<void*>(stream);
  require(!nnjpeg::uses_420(p) || workspace != 0, "4:2:0 needs a workspace");
  return p;
}

void run_forward(const std::string& device_type, const RoundtripParams& p) {
  if (p.n == 0) return;
  if (device_type == "cpu") {
    py::gil_scoped_release release;
    nnjpeg::cpu::roundtrip_forward(p);
    return;
  }
  require(device_type == "cuda", "device_type must be 'cpu' or 'cuda'");
  std::string err;
  {
    py::gil_scoped_release release;
    err = nnjpeg::cuda::roundtrip_forward(p);
  }
  if (!err.empty()) throw std::runtime_error("nnjpeg_cuda CUDA kernel failed: " + err);
}

void run_backward(const std::string& device_type, const RoundtripParams& p) {
  require(p.dtype != nnjpeg::kUInt8, "backward needs a floating-point dtype");
  require(!nnjpeg::uses_420(p) || (p.workspace != nullptr && p.workspace2 != nullptr),
          "4:2:0 backward needs both workspaces");
  require(p.grad_output != nullptr && p.grad_input != nullptr, "null gradient pointer");
  if (p.n == 0) return;
  if (device_type == "cpu") {
    py::gil_scoped_release release;
    nnjpeg::cpu::roundtrip_backward(p);
    return;
  }
  require(device_type == "cuda", "device_type must be 'cpu' or 'cuda'");
  std::string err;
  {
    py::gil_scoped_release release;
    err = nnjpeg::cuda::roundtrip_backward(p);
  }
  if (!err.empty()) throw std::runtime_error("nnjpeg_cuda CUDA kernel failed: " + err);
}

// The "ste" backward from the saved forward output (ste_backward.h): 4:4:4, grayscale, plain RGB.
void run_ste_backward(const std::string& device_type, const nnjpeg::SteBackwardParams& s) {
  const RoundtripParams& p = s.p;
  require(p.dtype != nnjpeg::kUInt8, "backward needs a floating-point dtype");
  require(!nnjpeg::uses_420(p), "the ste backward from the output covers 4:4:4, grayscale and plain RGB");
  require(p.rounding == nnjpeg::kRoundHalfEven, "the ste backward rounds half to even");
  require(s.output != nullptr && p.grad_output != nullptr && p.grad_input != nullptr,
          "null output or gradient pointer");
  if (p.n == 0) return;
  if (device_type == "cuda_replay") {  // the CUDA kernel's per-block function on the host (tests)
    py::gil_scoped_release release;
    const nnjpeg::Geometry g = nnjpeg::geometry(p);
    nnjpeg::dispatch_dtype(p.dtype, [&](auto io, auto compute) {
      using IO = decltype(io);
      if constexpr (!std::is_same<IO, uint8_t>::value) {
        for (int64_t item = 0; item < p.n * g.blocks_y * g.blocks_x; ++item)
          nnjpeg::ste_backward_block<IO, decltype(compute)>(s, nnjpeg::block_coord(item, g.blocks_y, g.blocks_x));
      }
    });
    return;
  }
  if (device_type == "cpu") {
    py::gil_scoped_release release;
    nnjpeg::cpu::ste_backward(s);
    return;
  }
  require(device_type == "cuda", "device_type must be 'cpu' or 'cuda'");
  std::string err;
  {
    py::gil_scoped_release release;
    err = nnjpeg::cuda::ste_backward(s);
  }
  if (!err.empty()) throw std::runtime_error("nnjpeg_cuda CUDA kernel failed: " + err);
}

// Replays the CUDA kernels' grid-stride loop on the host: how often each item would be visited.
std::vector<int32_t> cuda_grid_visits(int64_t items, int64_t max_blocks) {
  require(items >= 0 && items <= (int64_t(1) << 26), "items out of range for the replay");
  require(max_blocks >= 1, "max_blocks must be >= 1");
  std::vector<int32_t> visits(size_t(items), 0);
  if (items == 0) return visits;
  const nnjpeg::LaunchConfig c = nnjpeg::launch_config(items, max_blocks);
  const int64_t stride = nnjpeg::grid_item_stride(c.blocks, c.threads);
  for (int64_t block = 0; block < c.blocks; ++block)
    for (int64_t thread = 0; thread < c.threads; ++thread)
      for (int64_t item = nnjpeg::grid_first_item(block, thread, c.threads); item < items; item += stride)
        visits[size_t(item)] += 1;
  return visits;
}

}  // namespace

// Runs the CUDA forward's tiled passes on the host, in the kernels' order (tile_444.h; 4:2:0: the chroma pass,
// then the luma pass, tile_420.h), for the CPU tests.
void emulate_cuda_tile_forward(const RoundtripParams& p) {
  if (p.n == 0) return;
  py::gil_scoped_release release;
  const nnjpeg::Geometry g = nnjpeg::geometry(p);
  nnjpeg::dispatch_dtype(p.dtype, [&](auto io, auto compute) {
    using IO = decltype(io);
    using T = decltype(compute);
    if (nnjpeg::uses_420(p)) {
      nnjpeg::emulate_tile_pass<nnjpeg::TileChroma420<IO, T>, T>(p, g);
      nnjpeg::emulate_tile_pass<nnjpeg::TileLuma420<IO, T>, T>(p, g);
    } else {
      nnjpeg::emulate_tile_pass<nnjpeg::Tile444<IO, T>, T>(p, g);
    }
  });
}

// A block of the CPU output cache (cpu/output_cache.h) as a writable Python buffer: torch.frombuffer keeps
// this object alive as long as a tensor uses the memory, and its destruction gives the block back.
class CachedBlock {
 public:
  explicit CachedBlock(int64_t bytes) : bytes_(bytes) {
    require(bytes >= 0, "cached block size must be >= 0");
    base_ = nnjpeg::cpu::output_cache_acquire(bytes, &block_bytes_);
  }
  CachedBlock(const CachedBlock&) = delete;
  CachedBlock& operator=(const CachedBlock&) = delete;
  ~CachedBlock() { nnjpeg::cpu::output_cache_release(base_, block_bytes_); }
  py::buffer_info buffer() {
    return py::buffer_info(base_, 1, py::format_descriptor<uint8_t>::format(), 1, {bytes_}, {int64_t(1)}, false);
  }

 private:
  int64_t bytes_, block_bytes_ = 0;
  void* base_ = nullptr;
};

PYBIND11_MODULE(_C, m) {
  m.doc() = "nnjpeg_cuda kernels (raw pointers; use nnjpeg_cuda.roundtrip instead)";
  m.def("cuda_built", &nnjpeg::cuda::built, "True when the CUDA kernels are compiled into this build.");
  m.def(
      "forward",
      [](const std::string& device_type, uintptr_t input, uintptr_t output, uintptr_t tables, uintptr_t workspace,
         std::array<int64_t, 4> shape, int64_t levels, std::array<int64_t, 4> in_strides,
         std::array<int64_t, 5> out_strides, std::array<int64_t, 2> table_strides, int dtype, int subsampling,
         int color, int rounding, int num_threads, int device, uintptr_t stream, uintptr_t input_range,
         uintptr_t clamp_summary, uintptr_t pass_mask) {
        RoundtripParams p = make_params(input, output, tables, workspace, shape, levels, in_strides, out_strides,
                                        table_strides, dtype, subsampling, color, rounding, num_threads, device,
                                        stream);
        // A host float[3] (see params.h); only the CPU kernel fills it.
        require(input_range == 0 || device_type == "cpu", "input_range is filled by the CPU kernel only");
        p.input_range = reinterpret_cast<float*>(input_range);
        // (K, N, blocks_y, blocks_x) host bytes (params.h); only the CPU kernel writes them.
        require(clamp_summary == 0 || (device_type == "cpu" && p.dtype != nnjpeg::kUInt8 && !nnjpeg::uses_420(p)),
                "clamp_summary is written by the CPU kernel for float 4:4:4 / grayscale / plain RGB only");
        p.clamp_summary = reinterpret_cast<uint8_t*>(clamp_summary);
        // (K, N, C, blocks_y, blocks_x) host words (params.h), written beside the summary.
        require(pass_mask == 0 || clamp_summary != 0, "pass_mask is written with a clamp_summary only");
        p.pass_mask = reinterpret_cast<uint64_t*>(pass_mask);
        run_forward(device_type, p);
      },
      py::arg("device_type"), py::arg("input"), py::arg("output"), py::arg("tables"), py::arg("workspace"),
      py::arg("shape"), py::arg("levels"), py::arg("in_strides"), py::arg("out_strides"), py::arg("table_strides"),
      py::arg("dtype"), py::arg("subsampling"), py::arg("color"), py::arg("rounding"), py::arg("num_threads"),
      py::arg("device"), py::arg("stream"), py::arg("input_range") = 0, py::arg("clamp_summary") = 0,
      py::arg("pass_mask") = 0);
  m.def(
      "backward",
      [](const std::string& device_type, uintptr_t input, uintptr_t grad_output, uintptr_t grad_input,
         uintptr_t tables, uintptr_t workspace, uintptr_t workspace2, std::array<int64_t, 4> shape, int64_t levels,
         std::array<int64_t, 4> in_strides, std::array<int64_t, 5> grad_out_strides,
         std::array<int64_t, 4> grad_in_strides, std::array<int64_t, 2> table_strides, int dtype, int subsampling,
         int color, int rounding, int num_threads, int device, uintptr_t stream) {
        RoundtripParams p = make_params(input, grad_input, tables, workspace, shape, levels, in_strides,
                                        grad_out_strides, table_strides, dtype, subsampling, color, rounding,
                                        num_threads, device, stream);
        p.workspace2 = reinterpret_cast<void*>(workspace2);
        p.grad_output = reinterpret_cast<const void*>(grad_output);
        p.grad_input = reinterpret_cast<void*>(grad_input);
        p.output = nullptr;
        copy_strides(grad_in_strides, p.grad_in_stride, "grad_input strides");
        run_backward(device_type, p);
      },
      py::arg("device_type"), py::arg("input"), py::arg("grad_output"), py::arg("grad_input"), py::arg("tables"),
      py::arg("workspace"), py::arg("workspace2"), py::arg("shape"), py::arg("levels"), py::arg("in_strides"),
      py::arg("grad_out_strides"), py::arg("grad_in_strides"), py::arg("table_strides"), py::arg("dtype"),
      py::arg("subsampling"), py::arg("color"), py::arg("rounding"), py::arg("num_threads"), py::arg("device"),
      py::arg("stream"));
  m.def(
      "backward_ste",
      [](const std::string& device_type, uintptr_t input, uintptr_t output, uintptr_t grad_output,
         uintptr_t grad_input, uintptr_t tables, std::array<int64_t, 4> shape, int64_t levels,
         std::array<int64_t, 4> in_strides, std::array<int64_t, 5> out_strides,
         std::array<int64_t, 5> grad_out_strides, std::array<int64_t, 4> grad_in_strides,
         std::array<int64_t, 2> table_strides, int dtype, int subsampling, int color, int num_threads, int device,
         uintptr_t stream, bool always_recompute, uintptr_t clamp_summary, uintptr_t pass_mask) {
        nnjpeg::SteBackwardParams s;
        s.p = make_params(input, grad_input, tables, 0, shape, levels, in_strides, grad_out_strides, table_strides,
                          dtype, subsampling, color, nnjpeg::kRoundHalfEven, num_threads, device, stream);
        s.p.grad_output = reinterpret_cast<const void*>(grad_output);
        s.p.grad_input = reinterpret_cast<void*>(grad_input);
        s.p.output = nullptr;
        copy_strides(grad_in_strides, s.p.grad_in_stride, "grad_input strides");
        s.output = reinterpret_cast<const void*>(output);
        copy_strides(out_strides, s.output_stride, "output strides");
        s.always_recompute = always_recompute;
        // (K, N, blocks_y, blocks_x) bytes from the CPU forward (params.h): host memory, CPU kernel and replay only.
        require(clamp_summary == 0 || device_type != "cuda", "clamp_summary is read by the CPU kernel only");
        s.clamp_summary = reinterpret_cast<const uint8_t*>(clamp_summary);
        require(pass_mask == 0 || clamp_summary != 0, "pass_mask is read with a clamp_summary only");
        s.pass_mask = reinterpret_cast<const uint64_t*>(pass_mask);
        run_ste_backward(device_type, s);
      },
      py::arg("device_type"), py::arg("input"), py::arg("output"), py::arg("grad_output"), py::arg("grad_input"),
      py::arg("tables"), py::arg("shape"), py::arg("levels"), py::arg("in_strides"), py::arg("out_strides"),
      py::arg("grad_out_strides"), py::arg("grad_in_strides"), py::arg("table_strides"), py::arg("dtype"),
      py::arg("subsampling"), py::arg("color"), py::arg("num_threads"), py::arg("device"), py::arg("stream"),
      py::arg("always_recompute") = false, py::arg("clamp_summary") = 0, py::arg("pass_mask") = 0,
      "The 'ste' backward (4:4:4, grayscale, plain RGB) from the saved forward output; always_recompute (tests) "
      "recomputes the decoded pixels of every block; device_type 'cuda_replay' runs the CUDA kernel's per-block "
      "function on host pointers (tests).");
  m.def("cpu_isa", &nnjpeg::cpu::isa_in_use,
        "The CPU code path in use: 'scalar', 'generic', 'avx2' or 'avx512'.");
  m.def("cpu_isas", &nnjpeg::cpu::supported_isas, "CPU code paths this build and processor can run.");
  m.def(
      "set_cpu_isa",
      [](const std::string& name) {
        require(nnjpeg::cpu::select_isa(name), "unknown or unsupported CPU code path '" + name +
                                                "' (see cpu_isas(); 'auto' picks the best)");
      },
      py::arg("name"), "Select the CPU code path ('auto' = best supported; also env NNJPEG_CPU_ISA).");
  m.def(
      "emulate_cuda_tile_forward",
      [](uintptr_t input, uintptr_t output, uintptr_t tables, std::array<int64_t, 4> shape, int64_t levels,
         std::array<int64_t, 4> in_strides, std::array<int64_t, 5> out_strides,
         std::array<int64_t, 2> table_strides, int dtype, int color, int rounding, int subsampling,
         uintptr_t workspace) {
        emulate_cuda_tile_forward(make_params(input, output, tables, workspace, shape, levels, in_strides,
                                              out_strides, table_strides, dtype, subsampling, color, rounding, 1, 0,
                                              0));
      },
      py::arg("input"), py::arg("output"), py::arg("tables"), py::arg("shape"), py::arg("levels"),
      py::arg("in_strides"), py::arg("out_strides"), py::arg("table_strides"), py::arg("dtype"), py::arg("color"),
      py::arg("rounding"), py::arg("subsampling") = int(nnjpeg::k444), py::arg("workspace") = uintptr_t(0),
      "Host emulation of the CUDA forward's tiled kernels (same phases, barrier order). 4:2:0 needs a "
      "(levels, N, 2, chroma_h, chroma_w) workspace of the compute dtype (float; double for float64).");
  m.def(
      "cpu_streams_output",
      [](uintptr_t output, std::array<int64_t, 4> shape, int64_t levels, std::array<int64_t, 5> out_strides,
         int dtype, int subsampling) {
        // Only the output's address is looked at (mincore on three of its pages), never dereferenced.
        const std::array<int64_t, 4> no_strides = {0, 0, 0, 0};
        return nnjpeg::cpu::streams_output(make_params(1, output, 1, 1, shape, levels, no_strides, out_strides,
                                                       {0, 0}, dtype, subsampling, nnjpeg::kYCbCr,
                                                       nnjpeg::kRoundHalfEven, 1, 0, 0));
      },
      py::arg("output"), py::arg("shape"), py::arg("levels"), py::arg("out_strides"), py::arg("dtype"),
      py::arg("subsampling") = int(nnjpeg::k444),
      "Whether the CPU forward would store this output with streaming stores (large, aligned, pages resident; "
      "uint8 with 4:2:0 only).");
  m.def(
      "cpu_streams_grad_input",
      [](uintptr_t grad_input, std::array<int64_t, 4> shape, std::array<int64_t, 4> grad_in_strides, int dtype) {
        // Only the address is looked at (mincore on three of its pages), never dereferenced.
        RoundtripParams p;
        p.grad_input = reinterpret_cast<void*>(grad_input);
        p.n = shape[0], p.c = shape[1], p.h = shape[2], p.w = shape[3];
        for (int d = 0; d < 4; ++d) p.grad_in_stride[d] = grad_in_strides[d];
        p.dtype = dtype;
        return nnjpeg::cpu::streams_grad_input(p);
      },
      py::arg("grad_input"), py::arg("shape"), py::arg("grad_in_strides"), py::arg("dtype"),
      "Whether the CPU \"ste\" backward would store this gradient with streaming stores (as cpu_streams_output).");
  py::class_<CachedBlock>(m, "CachedBlock", py::buffer_protocol(),
                          "A block of the CPU output cache as a writable buffer (nnjpeg_cuda.cpu_cache).")
      .def(py::init<int64_t>(), py::arg("bytes"))
      .def_buffer(&CachedBlock::buffer);
  m.attr("cpu_cache_min_bytes") = nnjpeg::cpu::kCachedMinBytes;
  m.def(
      "cpu_cache_stats",
      [] {
        const nnjpeg::cpu::OutputCacheStats st = nnjpeg::cpu::output_cache_stats();
        py::dict d;
        d["cached_bytes"] = st.cached_bytes;
        d["limit_bytes"] = st.limit_bytes;
        d["hits"] = st.hits;
        d["misses"] = st.misses;
        return d;
      },
      "The CPU output cache: bytes held, limit, hits and misses.");
  m.def("cpu_cache_empty", &nnjpeg::cpu::output_cache_empty, "Unmap every block the CPU output cache holds.");
  m.def(
      "cpu_cache_set_limit",
      [](int64_t bytes) {
        require(bytes >= 0, "the CPU cache limit must be >= 0 bytes");
        nnjpeg::cpu::output_cache_set_limit(bytes);
      },
      py::arg("bytes"), "Set the CPU output cache's limit in bytes (0 turns it off) and trim the cache to it.");
  m.def(
      "cpu_divide_like_quantizer",
      [](const std::vector<float>& values, float divisor) {
        require(divisor > 0.0f && divisor < 1e30f, "the divisor must be positive and finite");
        std::vector<float> quotients(values.size());
        nnjpeg::cpu::divide_like_quantizer(values.data(), quotients.data(), int64_t(values.size()), divisor);
        return quotients;
      },
      py::arg("values"), py::arg("divisor"),
      "Tests: values / divisor through the current CPU path's quantizer division (bitwise IEEE on every path).");
  m.def("cpu_store_division_mismatches", &nnjpeg::cpu::store_division_mismatches,
        "Tests: floats x in [0, 255] whose float output on the current CPU path is not x / 255 (must be 0).");
  m.def("cuda_grid_visits", &cuda_grid_visits, py::arg("items"), py::arg("max_blocks") = nnjpeg::kMaxGridBlocks,
        "Host replay of the CUDA grid-stride loop: visits per item (each must be 1).");
}
