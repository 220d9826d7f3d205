// Python bindings for the conjugate gradient vector kernels. The solver state (spk/cg.h) is a
// float64 array owned by Python: host memory for the CPU functions, device memory (pointer)
// for the CUDA ones.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "registry.h"
#include "spk/cg.h"
#ifdef SPK_WITH_CUDA
#include "cuda/cg.h"
#include "cuda_args.h"
#endif

namespace py = pybind11;

namespace {

// Checks a real 1-D C-contiguous float32/float64 vector; returns whether it is float32.
bool check_vec(const py::array& a, const char* name, py::ssize_t n) {
  const bool single = py::dtype::of<float>().is(a.dtype());
  if (!single && !py::dtype::of<double>().is(a.dtype()))
    throw std::invalid_argument(std::string("`") + name + "` must be a float32 or float64 real view");
  if (a.ndim() != 1 || !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string("`") + name + "` must be 1-D and C-contiguous");
  if (n >= 0 && a.shape(0) != n)
    throw std::invalid_argument(std::string("`") + name + "` has the wrong length");
  return single;
}

double* check_state(py::array_t<double, py::array::c_style>& st) {
  if (st.ndim() != 1 || st.shape(0) < spk::kCgStateSize) throw std::invalid_argument("`state` must hold 16 float64");
  return st.mutable_data();
}

void same_kind(bool a, bool b) {
  if (a != b) throw std::invalid_argument("all CG vectors must share one dtype");
}

void dot_cpu(py::array a, py::array b, bool cplx, py::array_t<double, py::array::c_style> state,
             py::array_t<double, py::array::c_style> hist, int which) {
  const bool single = check_vec(a, "a", -1);
  same_kind(single, check_vec(b, "b", a.shape(0)));
  double* st = check_state(state);
  double* h = hist.mutable_data();
  if (!spk::cg_running(st)) return;
  const void* pa = a.data();
  const void* pb = b.data();
  const spk::index_t n = a.shape(0);
  double im = 0.0, re;
  {
    py::gil_scoped_release release;
    re = spk::cg_dot_cpu(pa, pb, n, single, cplx, &im);
  }
  spk::cg_finish_dot(st, h, which, re, im);
}

void update_xr_cpu(py::array x, py::array r, py::array p, py::array q, py::array_t<double, py::array::c_style> state,
                   py::array_t<double, py::array::c_style> hist) {
  const bool single = check_vec(x, "x", -1);
  const py::ssize_t n = x.shape(0);
  same_kind(single, check_vec(r, "r", n));
  same_kind(single, check_vec(p, "p", n));
  same_kind(single, check_vec(q, "q", n));
  double* st = check_state(state);
  if (!spk::cg_running(st)) return;
  const int k = static_cast<int>(st[spk::kCgIter]) + 1;
  if (hist.ndim() != 1 || hist.shape(0) <= k) throw std::invalid_argument("`hist` is too short");
  double* h = hist.mutable_data();
  void* px = x.mutable_data();
  void* pr = r.mutable_data();
  const void* pp = p.data();
  const void* pq = q.data();
  const double alpha = st[spk::kCgAlpha];
  double rr;
  {
    py::gil_scoped_release release;
    rr = spk::cg_update_xr_cpu(px, pr, pp, pq, n, single, alpha);
  }
  spk::cg_finish_rr(st, h, rr);
}

void update_p_cpu(py::array p, py::array z, py::array_t<double, py::array::c_style> state) {
  const bool single = check_vec(p, "p", -1);
  same_kind(single, check_vec(z, "z", p.shape(0)));
  double* st = check_state(state);
  if (!spk::cg_running(st)) return;
  void* pp = p.mutable_data();
  const void* pz = z.data();
  const spk::index_t n = p.shape(0);
  const double beta = spk::cg_beta(st);
  py::gil_scoped_release release;
  spk::cg_update_p_cpu(pp, pz, n, single, beta);
}

#ifdef SPK_WITH_CUDA
using spk::bindings::device_ptr;
using spk::bindings::with_real_type;
#endif

}  // namespace

SPK_REGISTER_BINDINGS(cg) {
  m.attr("CG_STATE_SIZE") = spk::kCgStateSize;
  m.def("cg_dot_cpu", &dot_cpu, py::arg("a"), py::arg("b"), py::arg("cplx"), py::arg("state"), py::arg("hist"),
        py::arg("which"), "Deterministic <a, b> of two real views, fed into the CG state (spk/cg.h).");
  m.def("cg_update_xr_cpu", &update_xr_cpu, py::arg("x"), py::arg("r"), py::arg("p"), py::arg("q"),
        py::arg("state"), py::arg("hist"), "Fused x += alpha p, r -= alpha q, ||r||^2 and the CG state update.");
  m.def("cg_update_p_cpu", &update_p_cpu, py::arg("p"), py::arg("z"), py::arg("state"),
        "p = z + beta p with beta from the CG state.");
#ifdef SPK_WITH_CUDA
  // The device launchers take typed argument structs (cpp/cuda/cg.h); `dtype` picks the type.
  m.def(
      "cg_dot_cuda",
      [](std::uintptr_t a, std::uintptr_t b, std::int64_t n, bool cplx, const std::string& dtype,
         std::uintptr_t state, std::uintptr_t hist, int which, std::uintptr_t work, std::uintptr_t stream) {
        with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          spk::cuda::CgDotLaunch<T> l;
          l.a = device_ptr<const T>(a), l.b = device_ptr<const T>(b), l.n = n, l.cplx = cplx;
          l.state = device_ptr<double>(state), l.hist = device_ptr<double>(hist), l.which = which;
          l.work = device_ptr<double>(work), l.stream = stream;
          py::gil_scoped_release release;
          spk::cuda::cg_dot(l);
        });
      },
      py::arg("a"), py::arg("b"), py::arg("n"), py::arg("cplx"), py::arg("dtype"), py::arg("state"),
      py::arg("hist"), py::arg("which"), py::arg("work"), py::arg("stream") = 0);
  m.def(
      "cg_update_xr_cuda",
      [](std::uintptr_t x, std::uintptr_t r, std::uintptr_t p, std::uintptr_t q, std::int64_t n,
         const std::string& dtype, std::uintptr_t state, std::uintptr_t hist, std::uintptr_t work,
         std::uintptr_t stream) {
        with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          spk::cuda::CgUpdateXrLaunch<T> l;
          l.x = device_ptr<T>(x), l.r = device_ptr<T>(r), l.p = device_ptr<const T>(p), l.q = device_ptr<const T>(q);
          l.n = n, l.state = device_ptr<double>(state), l.hist = device_ptr<double>(hist);
          l.work = device_ptr<double>(work), l.stream = stream;
          py::gil_scoped_release release;
          spk::cuda::cg_update_xr(l);
        });
      },
      py::arg("x"), py::arg("r"), py::arg("p"), py::arg("q"), py::arg("n"), py::arg("dtype"), py::arg("state"),
      py::arg("hist"), py::arg("work"), py::arg("stream") = 0);
  m.def(
      "cg_update_p_cuda",
      [](std::uintptr_t p, std::uintptr_t z, std::int64_t n, const std::string& dtype, std::uintptr_t state,
         std::uintptr_t stream) {
        with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          spk::cuda::CgUpdatePLaunch<T> l;
          l.p = device_ptr<T>(p), l.z = device_ptr<const T>(z), l.n = n;
          l.state = device_ptr<const double>(state), l.stream = stream;
          py::gil_scoped_release release;
          spk::cuda::cg_update_p(l);
        });
      },
      py::arg("p"), py::arg("z"), py::arg("n"), py::arg("dtype"), py::arg("state"), py::arg("stream") = 0);
  m.def(
      "cg_residual_cuda",
      [](std::uintptr_t r, std::uintptr_t b, std::uintptr_t q, std::int64_t n, const std::string& dtype,
         std::uintptr_t stream) {
        with_real_type(dtype, [&](auto zero) {
          using T = decltype(zero);
          spk::cuda::CgResidualLaunch<T> l;
          l.r = device_ptr<T>(r), l.b = device_ptr<const T>(b), l.q = device_ptr<const T>(q), l.n = n;
          l.stream = stream;
          py::gil_scoped_release release;
          spk::cuda::cg_residual(l);
        });
      },
      py::arg("r"), py::arg("b"), py::arg("q"), py::arg("n"), py::arg("dtype"), py::arg("stream") = 0,
      "r = b - q on the device (the initial residual).");
  m.attr("CG_WORK_SIZE") = spk::cuda::kCgWorkDoubles;
#endif
}
