// dtype -> (pixel type, compute type): uint8 and float32 compute in float, float64 in double.
#pragma once

#include <stdint.h>

#include "params.h"

namespace nnjpeg {

template <typename F>
void dispatch_dtype(int dtype, const F& f) {
  switch (dtype) {
    case kUInt8: f(uint8_t{}, float{}); break;
    case kFloat32: f(float{}, float{}); break;
    case kFloat64: f(double{}, double{}); break;
    default: break;  // rejected by the binding before any kernel runs
  }
}

}  // namespace nnjpeg
