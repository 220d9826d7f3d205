// Python bindings for the Fourier shell correlation accumulation (CPU arrays; CUDA pointers).
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <cstdint>
#include <stdexcept>

#include "registry.h"
#include "spk/fsc.h"
#ifdef SPK_WITH_CUDA
#include "cuda/fsc.h"
#include "cuda_args.h"
#endif

namespace py = pybind11;

namespace {

py::array_t<double> fsc_accumulate_cpu_py(py::array f1, py::array f2, std::int64_t nx, double az, double ay,
                                          double ax, int n_shells) {
  const bool single = py::dtype::of<std::complex<float>>().is(f1.dtype());
  const bool dbl = py::dtype::of<std::complex<double>>().is(f1.dtype());
  if (!single && !dbl) throw std::invalid_argument("`f1` must be complex64 or complex128");
  if (!f1.dtype().is(f2.dtype())) throw std::invalid_argument("`f1` and `f2` must have the same dtype");
  if (f1.ndim() != 3 || f2.ndim() != 3) throw std::invalid_argument("`f1` and `f2` must be 3-D half spectra");
  for (int d = 0; d < 3; ++d)
    if (f1.shape(d) != f2.shape(d)) throw std::invalid_argument("`f1` and `f2` must have the same shape");
  if (!(f1.flags() & py::array::c_style) || !(f2.flags() & py::array::c_style))
    throw std::invalid_argument("`f1` and `f2` must be C-contiguous");
  if (f1.shape(2) != nx / 2 + 1) throw std::invalid_argument("`nx` does not match the half-spectrum width");
  if (n_shells <= 0) throw std::invalid_argument("`n_shells` must be positive");
  const std::int64_t nz = f1.shape(0), ny = f1.shape(1);
  py::array_t<double> sums({static_cast<py::ssize_t>(n_shells), static_cast<py::ssize_t>(spk::kFscSums)});
  const void* p1 = f1.data();
  const void* p2 = f2.data();
  double* out = sums.mutable_data();
  {
    py::gil_scoped_release release;
    spk::fsc_accumulate_cpu(p1, p2, single, nz, ny, nx, az, ay, ax, n_shells, out);
  }
  return sums;
}

}  // namespace

SPK_REGISTER_BINDINGS(fsc) {
  m.def("fsc_accumulate_cpu", &fsc_accumulate_cpu_py, py::arg("f1"), py::arg("f2"), py::arg("nx"), py::arg("az"),
        py::arg("ay"), py::arg("ax"), py::arg("n_shells"),
        "Per-shell sums [Re F1 F2*, |F1|^2, |F2|^2, voxel count] of two rfftn half spectra (n_shells, 4).");
#ifdef SPK_WITH_CUDA
  m.def(
      "fsc_accumulate_cuda",
      [](std::uintptr_t f1, std::uintptr_t f2, const std::string& dtype, std::int64_t nz, std::int64_t ny,
         std::int64_t nx, double az, double ay, double ax, int n_shells, std::uintptr_t sums,
         std::uintptr_t stream) {
        if (dtype != "c64" && dtype != "c128") throw std::invalid_argument("`dtype` must be 'c64' or 'c128'");
        spk::bindings::with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          using spk::bindings::device_ptr;
          spk::cuda::FscLaunch<T> l;
          l.f1 = device_ptr<const std::complex<T>>(f1), l.f2 = device_ptr<const std::complex<T>>(f2);
          l.nz = nz, l.ny = ny, l.nx = nx, l.az = az, l.ay = ay, l.ax = ax, l.n_shells = n_shells;
          l.sums = device_ptr<double>(sums), l.stream = stream;
          py::gil_scoped_release release;
          spk::cuda::fsc_accumulate(l);
        });
      },
      py::arg("f1"), py::arg("f2"), py::arg("dtype"), py::arg("nz"), py::arg("ny"), py::arg("nx"), py::arg("az"),
      py::arg("ay"), py::arg("ax"), py::arg("n_shells"), py::arg("sums"), py::arg("stream") = 0,
      "Device version of fsc_accumulate_cpu: writes double[n_shells*4] at `sums` (device pointer).");
#endif
}
