// Run-time choice of the CPU code path (see cpu_isa.h).
#include "cpu_isa.h"

#include <vector>

#include "nnjpeg/kernels.h"

#include <stdlib.h>

#include <atomic>

namespace nnjpeg {
namespace cpu {
namespace {

const char* const kNames[] = {"scalar", "generic", "avx2", "avx512"};

bool supported(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
#if defined(NNJPEG_SIMD)
    case Isa::kGeneric:
      return true;
#endif
#if defined(NNJPEG_X86_ISAS)
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");  // the unit is built with -mfma
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    default:
      return false;
  }
}

bool parse(const std::string& name, Isa& out) {
  for (int i = 0; i < 4; ++i)
    if (name == kNames[i]) {
      out = Isa(i);
      return true;
    }
  return false;
}

Isa best() {
  for (int i = 3; i > 0; --i)
    if (supported(Isa(i))) return Isa(i);
  return Isa::kScalar;
}

Isa initial() {
  const char* env = getenv("NNJPEG_CPU_ISA");
  Isa isa;
  if (env && parse(env, isa) && supported(isa)) return isa;
  return best();
}

std::atomic<int>& selected() {
  static std::atomic<int> isa{int(initial())};
  return isa;
}

}  // namespace

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (int i = 0; i < 4; ++i)
    if (supported(Isa(i))) out.push_back(kNames[i]);
  return out;
}

Isa current_isa() { return Isa(selected().load(std::memory_order_relaxed)); }

std::string isa_name(Isa isa) { return kNames[int(isa)]; }

std::string isa_in_use() { return isa_name(current_isa()); }

bool select_isa(const std::string& name) {
  Isa isa = best();
  if (name != "auto" && !(parse(name, isa) && supported(isa))) return false;
  selected().store(int(isa), std::memory_order_relaxed);
  return true;
}

}  // namespace cpu
}  // namespace nnjpeg
