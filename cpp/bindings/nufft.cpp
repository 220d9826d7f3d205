// Python bindings of the 3-D NUFFT spreading / interpolation / binning (CPU and CUDA).
// CPU functions take NumPy arrays; CUDA functions take device pointers, sizes and a dtype string.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "registry.h"
#include "spk/nufft.h"
#ifdef SPK_WITH_CUDA
#include "cuda/nufft.h"
#include "cuda_args.h"
#endif

namespace py = pybind11;

namespace {

using dims3 = std::array<std::int64_t, 3>;
namespace cpu = spk::cpu::nufft;

bool c_contiguous(const py::array& a) { return (a.flags() & py::array::c_style) != 0; }

void check_sizes(const dims3& n, const dims3& bs, int w, const char* grid = "n_fine") {
  if (w < 2 || w > spk::nufft::kMaxWidth)
    throw std::invalid_argument("`w` must be in [2, 16], got " + std::to_string(w));
  for (int i = 0; i < 3; ++i) {
    if (n[i] < w || n[i] > (std::int64_t(1) << 30))
      throw std::invalid_argument(std::string("`") + grid + "` sizes must be in [w, 2^30], got " + std::to_string(n[i]));
    if (bs[i] < 1) throw std::invalid_argument("`bin_size` entries must be >= 1");
  }
}

void check_beta(double beta) {
  if (!(beta != 0) || !std::isfinite(beta)) throw std::invalid_argument("`beta` must be finite and nonzero (> 0: ES shape, < 0: PSWF bandwidth)");
}

std::int64_t nbins_of(const dims3& n, const dims3& bs) {
  return ((n[0] + bs[0] - 1) / bs[0]) * ((n[1] + bs[1] - 1) / bs[1]) * ((n[2] + bs[2] - 1) / bs[2]);
}

// Points: three 1-D C-contiguous arrays of one float dtype and one length. Returns 4 or 8.
int check_points(const py::array& x, const py::array& y, const py::array& z, std::int64_t& M) {
  const bool f32 = x.dtype().is(py::dtype::of<float>());
  const bool f64 = x.dtype().is(py::dtype::of<double>());
  if (!f32 && !f64) throw py::type_error("`x` must be float32 or float64, got " + std::string(py::str(x.dtype())));
  for (const auto* a : {&y, &z})
    if (!a->dtype().is(x.dtype()))
      throw py::type_error("`x`, `y`, `z` must share one dtype");
  for (const auto* a : {&x, &y, &z}) {
    if (a->ndim() != 1) throw std::invalid_argument("`x`, `y`, `z` must be 1-D");
    if (!c_contiguous(*a)) throw std::invalid_argument("`x`, `y`, `z` must be C-contiguous");
  }
  M = x.shape(0);
  if (y.shape(0) != M || z.shape(0) != M) throw std::invalid_argument("`x`, `y`, `z` must have one length");
  return f32 ? 4 : 8;
}

void check_values(const py::array& a, const char* name, int prec) {
  const bool ok = prec == 4 ? a.dtype().is(py::dtype::of<std::complex<float>>())
                            : a.dtype().is(py::dtype::of<std::complex<double>>());
  if (!ok)
    throw py::type_error(std::string("`") + name + "` must be " + (prec == 4 ? "complex64" : "complex128") +
                         " to match the points, got " + std::string(py::str(a.dtype())));
  if (!c_contiguous(a)) throw std::invalid_argument(std::string("`") + name + "` must be C-contiguous");
}

const std::int64_t* check_perm(const py::array& perm, std::int64_t M) {
  if (!perm.dtype().is(py::dtype::of<std::int64_t>())) throw py::type_error("`perm` must be int64");
  if (perm.ndim() != 1 || perm.shape(0) != M || !c_contiguous(perm))
    throw std::invalid_argument("`perm` must be a C-contiguous int64 array of length M");
  const auto* p = static_cast<const std::int64_t*>(perm.data());
  bool bad = false;
  {
    py::gil_scoped_release r;
    for (std::int64_t i = 0; i < M; ++i) bad |= static_cast<std::uint64_t>(p[i]) >= static_cast<std::uint64_t>(M);
  }
  if (bad) throw std::invalid_argument("`perm` has entries outside [0, M)");
  return p;
}

const std::int64_t* check_offsets(const py::array& off, std::int64_t nbins, std::int64_t M) {
  if (!off.dtype().is(py::dtype::of<std::int64_t>())) throw py::type_error("`bin_offsets` must be int64");
  if (off.ndim() != 1 || off.shape(0) != nbins + 1 || !c_contiguous(off))
    throw std::invalid_argument("`bin_offsets` must be C-contiguous with nbins + 1 = " +
                                std::to_string(nbins + 1) + " entries");
  const auto* o = static_cast<const std::int64_t*>(off.data());
  bool bad = o[0] != 0 || o[nbins] != M;
  for (std::int64_t b = 0; b < nbins && !bad; ++b) bad = o[b + 1] < o[b];
  if (bad) throw std::invalid_argument("`bin_offsets` must rise from 0 to M");
  return o;
}

py::tuple setpts_cpu(py::array x, py::array y, py::array z, dims3 n, dims3 bs) {
  std::int64_t M = 0;
  const int prec = check_points(x, y, z, M);
  check_sizes(n, bs, 2);
  const std::int64_t nbins = nbins_of(n, bs);
  py::array_t<std::int64_t> perm(M), off(nbins + 1);
  auto* pp = perm.mutable_data();
  auto* po = off.mutable_data();
  {
    py::gil_scoped_release r;
    if (prec == 4)
      cpu::setpts(static_cast<const float*>(x.data()), static_cast<const float*>(y.data()),
                  static_cast<const float*>(z.data()), M, n, bs, pp, po);
    else
      cpu::setpts(static_cast<const double*>(x.data()), static_cast<const double*>(y.data()),
                  static_cast<const double*>(z.data()), M, n, bs, pp, po);
  }
  return py::make_tuple(perm, off);
}

// c is (V, M) or (M,) (then V = 1); the result is always (V, n1, n2, n3).
py::array spread_cpu(py::array x, py::array y, py::array z, py::array c, py::array perm,
                     py::array bin_offsets, dims3 n, dims3 bs, int w, double beta,
                     const std::string& method) {
  std::int64_t M = 0;
  const int prec = check_points(x, y, z, M);
  check_sizes(n, bs, w);
  check_beta(beta);
  if (method != "gather" && method != "scatter")
    throw std::invalid_argument("`method` must be 'gather' or 'scatter', got '" + method + "'");
  check_values(c, "c", prec);
  if (c.ndim() != 1 && c.ndim() != 2) throw std::invalid_argument("`c` must have shape (V, M) or (M,)");
  const std::int64_t V = c.ndim() == 2 ? c.shape(0) : 1;
  if (c.shape(c.ndim() - 1) != M) throw std::invalid_argument("`c` must have M columns, like `x`");
  if (V < 1) throw std::invalid_argument("`c` must hold at least one vector");
  const auto* pp = check_perm(perm, M);
  const auto* po = check_offsets(bin_offsets, nbins_of(n, bs), M);
  const bool gather = method == "gather";
  std::vector<py::ssize_t> shape{V, n[0], n[1], n[2]};
  if (prec == 4) {
    py::array_t<std::complex<float>> out(shape);
    auto* o = reinterpret_cast<float*>(out.mutable_data());
    {
      py::gil_scoped_release r;
      cpu::spread(static_cast<const float*>(x.data()), static_cast<const float*>(y.data()),
                  static_cast<const float*>(z.data()), static_cast<const float*>(c.data()), V, M, pp, po,
                  n, bs, w, beta, gather, o);
    }
    return out;
  }
  py::array_t<std::complex<double>> out(shape);
  auto* o = reinterpret_cast<double*>(out.mutable_data());
  {
    py::gil_scoped_release r;
    cpu::spread(static_cast<const double*>(x.data()), static_cast<const double*>(y.data()),
                static_cast<const double*>(z.data()), static_cast<const double*>(c.data()), V, M, pp, po,
                n, bs, w, beta, gather, o);
  }
  return out;
}

// fine is (V, n1, n2, n3) or (n1, n2, n3) (then V = 1); the result is always (V, M).
py::array interp_cpu(py::array x, py::array y, py::array z, py::array fine, py::array perm, int w,
                     double beta) {
  std::int64_t M = 0;
  const int prec = check_points(x, y, z, M);
  check_values(fine, "fine", prec);
  if (fine.ndim() != 3 && fine.ndim() != 4)
    throw std::invalid_argument("`fine` must have shape (V, n1, n2, n3) or (n1, n2, n3)");
  const int o = fine.ndim() - 3;
  const std::int64_t V = o ? fine.shape(0) : 1;
  const dims3 n{fine.shape(o), fine.shape(o + 1), fine.shape(o + 2)};
  check_sizes(n, dims3{1, 1, 1}, w, "fine");
  check_beta(beta);
  if (V < 1) throw std::invalid_argument("`fine` must hold at least one vector");
  const auto* pp = check_perm(perm, M);
  std::vector<py::ssize_t> shape{V, M};
  if (prec == 4) {
    py::array_t<std::complex<float>> out(shape);
    auto* c = reinterpret_cast<float*>(out.mutable_data());
    {
      py::gil_scoped_release r;
      cpu::interp(static_cast<const float*>(x.data()), static_cast<const float*>(y.data()),
                  static_cast<const float*>(z.data()), static_cast<const float*>(fine.data()), V, M, pp,
                  n, w, beta, c);
    }
    return out;
  }
  py::array_t<std::complex<double>> out(shape);
  auto* c = reinterpret_cast<double*>(out.mutable_data());
  {
    py::gil_scoped_release r;
    cpu::interp(static_cast<const double*>(x.data()), static_cast<const double*>(y.data()),
                static_cast<const double*>(z.data()), static_cast<const double*>(fine.data()), V, M, pp, n,
                w, beta, c);
  }
  return out;
}

#ifdef SPK_WITH_CUDA
using spk::bindings::device_ptr;
#endif

}  // namespace

SPK_REGISTER_BINDINGS(nufft) {
  m.def("nufft_setpts_cpu", &setpts_cpu, py::arg("x"), py::arg("y"), py::arg("z"), py::arg("n_fine"),
        py::arg("bin_size"),
        "Stable counting sort of the points by bin. Returns (perm int64 (M,), bin_offsets int64 (nbins+1,)).");
  m.def("nufft_spread_cpu", &spread_cpu, py::arg("x"), py::arg("y"), py::arg("z"), py::arg("c"),
        py::arg("perm"), py::arg("bin_offsets"), py::arg("n_fine"), py::arg("bin_size"), py::arg("w"),
        py::arg("beta"), py::arg("method") = "gather",
        "Type-1 spreading of c (V, M) onto the fine grid (V, n1, n2, n3); method 'gather' "
        "(deterministic, output-driven) or 'scatter' (baseline).");
  m.def("nufft_interp_cpu", &interp_cpu, py::arg("x"), py::arg("y"), py::arg("z"), py::arg("fine"),
        py::arg("perm"), py::arg("w"), py::arg("beta"),
        "Type-2 interpolation of the fine grid (V, n1, n2, n3) at the points: c (V, M).");
#ifdef SPK_WITH_CUDA
  m.def(
      "nufft_setpts_cuda",
      [](std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::int64_t M, std::int64_t n1,
         std::int64_t n2, std::int64_t n3, std::int64_t bs1, std::int64_t bs2, std::int64_t bs3,
         const std::string& dtype, std::uintptr_t perm, std::uintptr_t bin_offsets, std::uintptr_t stream) {
        check_sizes({n1, n2, n3}, {bs1, bs2, bs3}, 2);
        spk::bindings::with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          spk::cuda::NufftSetptsLaunch<T> a;
          a.x = device_ptr<const T>(x), a.y = device_ptr<const T>(y), a.z = device_ptr<const T>(z), a.M = M;
          a.n1 = n1, a.n2 = n2, a.n3 = n3, a.bs1 = bs1, a.bs2 = bs2, a.bs3 = bs3;
          a.perm = device_ptr<std::int64_t>(perm), a.bin_offsets = device_ptr<std::int64_t>(bin_offsets);
          a.stream = stream;
          py::gil_scoped_release r;
          spk::cuda::nufft_setpts(a);
        });
      },
      py::arg("x_ptr"), py::arg("y_ptr"), py::arg("z_ptr"), py::arg("M"), py::arg("n1"), py::arg("n2"),
      py::arg("n3"), py::arg("bs1"), py::arg("bs2"), py::arg("bs3"), py::arg("dtype"), py::arg("perm_ptr"),
      py::arg("bin_offsets_ptr"), py::arg("stream") = 0,
      "GPU binning: writes perm (int64 M) and bin_offsets (int64 nbins+1) on the device.");
  m.def(
      "nufft_spread_cuda",
      [](std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t c, std::int64_t V,
         std::int64_t M, std::uintptr_t perm, std::uintptr_t bin_offsets, std::int64_t n1, std::int64_t n2,
         std::int64_t n3, std::int64_t bs1, std::int64_t bs2, std::int64_t bs3, int w, double beta,
         const std::string& dtype, const std::string& method, std::uintptr_t fine, std::uintptr_t stream) {
        check_sizes({n1, n2, n3}, {bs1, bs2, bs3}, w);
        check_beta(beta);
        if (method != "gather" && method != "scatter")
          throw std::invalid_argument("`method` must be 'gather' or 'scatter', got '" + method + "'");
        spk::bindings::with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          spk::cuda::NufftSpreadLaunch<T> a;
          a.x = device_ptr<const T>(x), a.y = device_ptr<const T>(y), a.z = device_ptr<const T>(z);
          a.c = device_ptr<const std::complex<T>>(c), a.V = V, a.M = M;
          a.perm = device_ptr<const std::int64_t>(perm), a.bin_offsets = device_ptr<const std::int64_t>(bin_offsets);
          a.n1 = n1, a.n2 = n2, a.n3 = n3, a.bs1 = bs1, a.bs2 = bs2, a.bs3 = bs3, a.w = w, a.beta = beta;
          a.gather = method == "gather", a.fine = device_ptr<std::complex<T>>(fine), a.stream = stream;
          py::gil_scoped_release r;
          spk::cuda::nufft_spread(a);
        });
      },
      py::arg("x_ptr"), py::arg("y_ptr"), py::arg("z_ptr"), py::arg("c_ptr"), py::arg("V"), py::arg("M"),
      py::arg("perm_ptr"), py::arg("bin_offsets_ptr"), py::arg("n1"), py::arg("n2"), py::arg("n3"),
      py::arg("bs1"), py::arg("bs2"), py::arg("bs3"), py::arg("w"), py::arg("beta"), py::arg("dtype"),
      py::arg("method"), py::arg("fine_ptr"), py::arg("stream") = 0,
      "GPU type-1 spreading into fine (V, n1, n2, n3), fully overwritten.");
  m.def(
      "nufft_interp_cuda",
      [](std::uintptr_t x, std::uintptr_t y, std::uintptr_t z, std::uintptr_t fine, std::int64_t V,
         std::int64_t M, std::uintptr_t perm, std::int64_t n1, std::int64_t n2, std::int64_t n3, int w,
         double beta, const std::string& dtype, std::uintptr_t c, std::uintptr_t stream) {
        check_sizes({n1, n2, n3}, {1, 1, 1}, w);
        check_beta(beta);
        spk::bindings::with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          spk::cuda::NufftInterpLaunch<T> a;
          a.x = device_ptr<const T>(x), a.y = device_ptr<const T>(y), a.z = device_ptr<const T>(z);
          a.fine = device_ptr<const std::complex<T>>(fine), a.V = V, a.M = M;
          a.perm = device_ptr<const std::int64_t>(perm), a.n1 = n1, a.n2 = n2, a.n3 = n3, a.w = w, a.beta = beta;
          a.c = device_ptr<std::complex<T>>(c), a.stream = stream;
          py::gil_scoped_release r;
          spk::cuda::nufft_interp(a);
        });
      },
      py::arg("x_ptr"), py::arg("y_ptr"), py::arg("z_ptr"), py::arg("fine_ptr"), py::arg("V"), py::arg("M"),
      py::arg("perm_ptr"), py::arg("n1"), py::arg("n2"), py::arg("n3"), py::arg("w"), py::arg("beta"),
      py::arg("dtype"), py::arg("c_ptr"), py::arg("stream") = 0,
      "GPU type-2 interpolation: c (V, M) from fine (V, n1, n2, n3).");
#endif
}
