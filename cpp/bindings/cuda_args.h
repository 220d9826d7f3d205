// Helpers the bindings share to fill the CUDA launchers' argument structs (cpp/cuda/*.h) from
// Python's integers: device pointers come as integers, the real type as a dtype tag.
#pragma once
#include <stdexcept>
#include <string>

#include "cuda/runtime.h"

namespace spk::bindings {

using spk::cuda::device_ptr;

// Calls f(float{}) for the dtype tag "f32" (or "c64") and f(double{}) for "f64" (or "c128").
template <class F>
void with_real_type(const std::string& dtype, F&& f) {
  if (dtype == "f32" || dtype == "c64")
    f(float{});
  else if (dtype == "f64" || dtype == "c128")
    f(double{});
  else
    throw std::invalid_argument("`dtype` must be 'f32' or 'f64' ('c64' or 'c128' for complex), got '" + dtype + "'");
}

}  // namespace spk::bindings
