// The spkernels._core module: build information plus every registered kernel family.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "registry.h"

#ifdef SPK_WITH_OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace {

py::dict build_info() {
  py::dict d;
#ifdef SPK_VERSION
  d["version"] = SPK_VERSION;
#else
  d["version"] = "unknown";
#endif
#ifdef SPK_WITH_CUDA
  d["cuda"] = true;
  d["cuda_version"] = SPK_CUDA_VERSION;
  std::vector<std::string> archs;
  std::string s = SPK_CUDA_ARCHS;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) archs.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  d["cuda_architectures"] = archs;
#else
  d["cuda"] = false;
  d["cuda_version"] = py::none();
  d["cuda_architectures"] = std::vector<std::string>{};
#endif
#ifdef SPK_WITH_OPENMP
  d["openmp"] = true;
  d["cpu_threads"] = omp_get_max_threads();
#else
  d["openmp"] = false;
  d["cpu_threads"] = 1;
#endif
#if defined(__clang__)
  d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  d["compiler"] = std::string("gcc ") + __VERSION__;
#else
  d["compiler"] = "unknown";
#endif
  std::vector<std::string> families;
  for (auto& [name, fn] : spk::bindings::registry()) families.emplace_back(name);
  std::sort(families.begin(), families.end());
  d["families"] = families;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "spkernels compiled core: C++ CPU kernels (OpenMP) and CUDA kernels when built with nvcc";
  m.def("build_info", &build_info, "What this extension was compiled with.");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw std::invalid_argument("`n` must be >= 1");
#ifdef SPK_WITH_OPENMP
        omp_set_num_threads(n);
#endif
      },
      py::arg("n"), "Set the number of OpenMP threads the CPU kernels use.");
  // Deterministic order of registration so that docs and errors do not depend on link order.
  auto regs = spk::bindings::registry();
  std::sort(regs.begin(), regs.end(),
            [](const auto& a, const auto& b) { return std::strcmp(a.first, b.first) < 0; });
  for (auto& [name, fn] : regs) fn(m);
}
