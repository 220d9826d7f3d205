// Python bindings of the distance family (pairwise distances, top-k, segmented argmin; CPU and
// CUDA). The Python layer validates user input first; these checks guard the core against misuse
// and name the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "registry.h"
#include "spk/distance.h"
#ifdef SPK_WITH_CUDA
#include "cuda/distance.h"
#include "cuda_args.h"
#endif

namespace py = pybind11;

namespace {

using spk::index_t;

void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string("`") + name + "` must be C-contiguous");
}

void require_ndim(const py::array& a, int ndim, const char* name) {
  if (a.ndim() != ndim)
    throw std::invalid_argument(std::string("`") + name + "` must have " + std::to_string(ndim) +
                                " dimension(s), got " + std::to_string(a.ndim()));
}

// 'f' (float32) or 'd' (float64); anything else is a TypeError naming the argument.
char float_kind(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return 'f';
  if (a.dtype().is(py::dtype::of<double>())) return 'd';
  throw py::type_error(std::string("`") + name + "` must be float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

void require_dtype(const py::array& a, char kind, const char* name) {
  if (float_kind(a, name) != kind)
    throw py::type_error(std::string("`") + name + "` must have the same dtype as `models`");
}

struct Inputs {
  py::array models, data, weights;  // weights empty when None
  bool has_weights = false;
  char kind = 'f';
  index_t R = 0, N = 0, P = 0;
};

Inputs check_inputs(const py::array& models, const py::array& data, const py::object& weights) {
  Inputs in;
  in.models = models;
  in.data = data;
  in.kind = float_kind(models, "models");
  require_dtype(data, in.kind, "data");
  require_ndim(models, 2, "models");
  require_ndim(data, 2, "data");
  require_c_contiguous(models, "models");
  require_c_contiguous(data, "data");
  in.R = models.shape(0);
  in.P = models.shape(1);
  in.N = data.shape(0);
  if (data.shape(1) != in.P)
    throw std::invalid_argument("`data` must have as many pixels as `models` (" + std::to_string(in.P) +
                                "), got " + std::to_string(data.shape(1)));
  if (!weights.is_none()) {
    if (!py::isinstance<py::array>(weights)) throw py::type_error("`weights` must be a NumPy array or None");
    in.weights = weights.cast<py::array>();
    in.has_weights = true;
    require_dtype(in.weights, in.kind, "weights");
    require_ndim(in.weights, 1, "weights");
    require_c_contiguous(in.weights, "weights");
    if (in.weights.shape(0) != in.P)
      throw std::invalid_argument("`weights` must have P=" + std::to_string(in.P) + " entries, got " +
                                  std::to_string(in.weights.shape(0)));
  }
  return in;
}

template <class T>
const T* wptr(const Inputs& in) {
  return in.has_weights ? static_cast<const T*>(in.weights.data()) : nullptr;
}

template <class T>
py::tuple topk_cpu_t(const Inputs& in, int metric, int k) {
  if (k < 1 || k > in.R)
    throw std::invalid_argument("`k` must be in [1, " + std::to_string(in.R) + "], got " + std::to_string(k));
  py::array_t<index_t> index({in.N, static_cast<index_t>(k)});
  py::array_t<T> score({in.N, static_cast<index_t>(k)});
  const T* m = static_cast<const T*>(in.models.data());
  const T* d = static_cast<const T*>(in.data.data());
  const T* w = wptr<T>(in);
  index_t* oi = index.mutable_data();
  T* os = score.mutable_data();
  {
    py::gil_scoped_release release;
    spk::distance::cpu::topk<T>(m, d, w, in.R, in.N, in.P, metric, k, oi, os);
  }
  return py::make_tuple(index, score);
}

template <class T>
py::array pairwise_cpu_t(const Inputs& in, int metric) {
  py::array_t<T> out({in.R, in.N});
  const T* m = static_cast<const T*>(in.models.data());
  const T* d = static_cast<const T*>(in.data.data());
  const T* w = wptr<T>(in);
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    spk::distance::cpu::pairwise<T>(m, d, w, in.R, in.N, in.P, metric, o);
  }
  return out;
}

template <class T>
py::tuple segmented_cpu_t(const py::array& values, const py::array& offsets) {
  const index_t M = values.shape(0);
  const index_t S = offsets.shape(0) - 1;
  py::array_t<index_t> index(S);
  py::array_t<T> value(S);
  const T* v = static_cast<const T*>(values.data());
  const index_t* o = static_cast<const index_t*>(offsets.data());
  index_t* oi = index.mutable_data();
  T* ov = value.mutable_data();
  {
    py::gil_scoped_release release;
    spk::distance::cpu::segmented_argmin<T>(v, M, o, S, oi, ov);
  }
  return py::make_tuple(index, value);
}

}  // namespace

SPK_REGISTER_BINDINGS(distance) {
  m.def(
      "distance_topk_cpu",
      [](py::array models, py::array data, py::object weights, int metric, int k) {
        Inputs in = check_inputs(models, data, weights);
        return in.kind == 'f' ? topk_cpu_t<float>(in, metric, k) : topk_cpu_t<double>(in, metric, k);
      },
      py::arg("models"), py::arg("data"), py::arg("weights"), py::arg("metric"), py::arg("k"),
      "k best models per data row, ascending (score, index): returns (index (N,k) int64, score (N,k)).");
  m.def(
      "pairwise_score_cpu",
      [](py::array models, py::array data, py::object weights, int metric) {
        Inputs in = check_inputs(models, data, weights);
        return in.kind == 'f' ? pairwise_cpu_t<float>(in, metric) : pairwise_cpu_t<double>(in, metric);
      },
      py::arg("models"), py::arg("data"), py::arg("weights"), py::arg("metric"),
      "Score matrix (R,N) of the distance family's general form.");
  m.def(
      "segmented_argmin_cpu",
      [](py::array values, py::array offsets) {
        const char kind = float_kind(values, "values");
        require_ndim(values, 1, "values");
        require_c_contiguous(values, "values");
        if (!offsets.dtype().is(py::dtype::of<index_t>())) throw py::type_error("`offsets` must be int64");
        require_ndim(offsets, 1, "offsets");
        require_c_contiguous(offsets, "offsets");
        if (offsets.shape(0) < 1) throw std::invalid_argument("`offsets` must have at least one entry");
        return kind == 'f' ? segmented_cpu_t<float>(values, offsets) : segmented_cpu_t<double>(values, offsets);
      },
      py::arg("values"), py::arg("offsets"),
      "Per segment: (index local to the segment or -1 when empty, value or +inf when empty).");

#ifdef SPK_WITH_CUDA
  m.def(
      "distance_topk_cuda",
      [](std::uintptr_t models, std::uintptr_t data, std::uintptr_t weights, index_t R, index_t N, index_t P,
         int metric, int k, const std::string& precision, std::uintptr_t out_index, std::uintptr_t out_score,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        using spk::bindings::device_ptr;
        spk::cuda::TopkLaunch a;
        spk::cuda::set_problem(a, models, data, weights, R, N, P, metric, precision);
        a.stream = stream;
        a.k = k;
        a.out_index = device_ptr<index_t>(out_index);
        a.out_score = device_ptr<float>(out_score);
        spk::cuda::distance_topk(a);
      },
      py::arg("models_ptr"), py::arg("data_ptr"), py::arg("weights_ptr"), py::arg("R"), py::arg("N"), py::arg("P"),
      py::arg("metric"), py::arg("k"), py::arg("precision"), py::arg("out_index_ptr"), py::arg("out_score_ptr"),
      py::arg("stream") = 0,
      "Fused GEMM + top-k on device pointers (float32 in; int64 / float32 (N,k) out). Enqueues on `stream`.");
  m.def(
      "pairwise_score_cuda",
      [](std::uintptr_t models, std::uintptr_t data, std::uintptr_t weights, index_t R, index_t N, index_t P,
         int metric, const std::string& precision, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        using spk::bindings::device_ptr;
        spk::cuda::PairwiseLaunch a;
        spk::cuda::set_problem(a, models, data, weights, R, N, P, metric, precision);
        a.stream = stream;
        a.out = device_ptr<float>(out);
        spk::cuda::pairwise_score(a);
      },
      py::arg("models_ptr"), py::arg("data_ptr"), py::arg("weights_ptr"), py::arg("R"), py::arg("N"), py::arg("P"),
      py::arg("metric"), py::arg("precision"), py::arg("out_ptr"), py::arg("stream") = 0,
      "Score matrix (R,N) float32 on device pointers. Enqueues on `stream`.");
  m.def(
      "segmented_argmin_cuda",
      [](std::uintptr_t values, std::uintptr_t offsets, index_t S, std::uintptr_t out_index, std::uintptr_t out_value,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        using spk::bindings::device_ptr;
        spk::cuda::SegmentedArgminLaunch a;
        a.values = device_ptr<const float>(values);
        a.offsets = device_ptr<const index_t>(offsets);
        a.S = S;
        a.out_index = device_ptr<index_t>(out_index);
        a.out_value = device_ptr<float>(out_value);
        a.stream = stream;
        spk::cuda::segmented_argmin(a);
      },
      py::arg("values_ptr"), py::arg("offsets_ptr"), py::arg("S"), py::arg("out_index_ptr"), py::arg("out_value_ptr"),
      py::arg("stream") = 0, "Per-segment argmin on device (float32 values, int64 offsets). Enqueues on `stream`.");
#endif
}
