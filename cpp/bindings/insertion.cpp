// Python bindings for the Fourier insertion family (CPU arrays; CUDA device pointers).
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "registry.h"
#include "spk/insertion.h"
#ifdef SPK_WITH_CUDA
#include "cuda/insertion.h"
#include "cuda_args.h"
#endif

namespace py = pybind11;

namespace {

bool is_single_complex(const py::array& a, const char* name) {
  if (py::dtype::of<std::complex<float>>().is(a.dtype())) return true;
  if (py::dtype::of<std::complex<double>>().is(a.dtype())) return false;
  throw std::invalid_argument(std::string("`") + name + "` must be complex64 or complex128");
}

void require(const py::array& a, const char* name, bool single, bool complex_, std::initializer_list<py::ssize_t> shape) {
  const bool ok = complex_ ? (single ? py::dtype::of<std::complex<float>>().is(a.dtype())
                                     : py::dtype::of<std::complex<double>>().is(a.dtype()))
                           : (single ? py::dtype::of<float>().is(a.dtype()) : py::dtype::of<double>().is(a.dtype()));
  if (!ok) throw std::invalid_argument(std::string("`") + name + "` has the wrong dtype for this precision");
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string("`") + name + "` must be C-contiguous");
  if (static_cast<std::size_t>(a.ndim()) != shape.size())
    throw std::invalid_argument(std::string("`") + name + "` has the wrong number of dimensions");
  int d = 0;
  for (auto s : shape) {
    if (s >= 0 && a.shape(d) != s) throw std::invalid_argument(std::string("`") + name + "` has the wrong shape");
    ++d;
  }
}

// The optional CTF (n, N, N) as a pointer (null for None); `keep` holds the array alive.
const void* optional_ctf(const py::object& ctf, py::array& keep, bool single, py::ssize_t n, py::ssize_t N) {
  if (ctf.is_none()) return nullptr;
  keep = ctf.cast<py::array>();
  require(keep, "ctf", single, false, {n, N, N});
  return keep.data();
}

void check_table(const py::array& table, double scale, double radius) {
  if (table.shape(0) < 2) throw std::invalid_argument("`table` needs at least 2 entries");
  if (scale * radius * radius > static_cast<double>(table.shape(0) - 1) + 1e-6)
    throw std::invalid_argument("`scale` reaches past the end of `table`");
}

void insert_cpu_py(py::array images, py::object ctf, py::array rotations, py::array table, double scale,
                   double radius, double max_freq2, py::array volume, py::array weights, const std::string& method) {
  if (method != "gather" && method != "scatter") throw std::invalid_argument("`method` must be 'gather' or 'scatter'");
  const bool single = is_single_complex(images, "images");
  if (images.ndim() != 3) throw std::invalid_argument("`images` must be (n, N, N)");
  const py::ssize_t n = images.shape(0), N = images.shape(1);
  require(images, "images", single, true, {n, N, N});
  require(rotations, "rotations", single, false, {n, 3, 3});
  require(table, "table", single, false, {-1});
  require(volume, "volume", single, true, {N, N, N / 2 + 1});
  require(weights, "weights", single, false, {N, N, N / 2 + 1});
  py::array c;
  const void* cp = optional_ctf(ctf, c, single, n, N);
  check_table(table, scale, radius);
  const void* ip = images.data();
  const void* rp = rotations.data();
  const void* tp = table.data();
  void* vp = volume.mutable_data();
  void* wp = weights.mutable_data();
  py::gil_scoped_release release;
  spk::insertion_insert_cpu(ip, cp, rp, tp, single, n, N, scale, radius, max_freq2, vp, wp, method == "gather");
}

py::array extract_cpu_py(py::array volume, py::object ctf, py::array rotations, py::array table, double scale,
                         double radius, double max_freq2) {
  const bool single = is_single_complex(volume, "volume");
  if (volume.ndim() != 3) throw std::invalid_argument("`volume` must be (N, N, N/2 + 1)");
  const py::ssize_t N = volume.shape(0);
  require(volume, "volume", single, true, {N, N, N / 2 + 1});
  if (rotations.ndim() != 3) throw std::invalid_argument("`rotations` must be (n, 3, 3)");
  const py::ssize_t n = rotations.shape(0);
  require(rotations, "rotations", single, false, {n, 3, 3});
  require(table, "table", single, false, {-1});
  check_table(table, scale, radius);
  py::array c;
  const void* cp = optional_ctf(ctf, c, single, n, N);
  py::array out = single ? py::array(py::array_t<std::complex<float>>({n, N, N}))
                         : py::array(py::array_t<std::complex<double>>({n, N, N}));
  const void* vp = volume.data();
  const void* rp = rotations.data();
  const void* tp = table.data();
  void* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    spk::insertion_extract_cpu(vp, cp, rp, tp, single, n, N, scale, radius, max_freq2, op);
  }
  return out;
}

#ifdef SPK_WITH_CUDA
// Calls f(T{}) with T the real type of the complex dtype tag ('c64' or 'c128').
template <class F>
void with_complex_dtype(const std::string& dtype, F&& f) {
  if (dtype != "c64" && dtype != "c128") throw std::invalid_argument("`dtype` must be 'c64' or 'c128'");
  spk::bindings::with_real_type(dtype, f);
}

// The fields the insert and extract launch structs share.
template <class T, class Launch>
void set_blob_args(Launch& a, std::uintptr_t ctf, std::uintptr_t rotations, std::uintptr_t table,
                   std::int64_t table_size, std::int64_t n, std::int64_t N, double scale, double radius,
                   double max_freq2, std::uintptr_t stream) {
  using spk::bindings::device_ptr;
  a.ctf = device_ptr<const T>(ctf), a.rotations = device_ptr<const T>(rotations);
  a.table = device_ptr<const T>(table), a.table_size = table_size, a.n = n, a.N = N;
  a.scale = scale, a.radius = radius, a.max_freq2 = max_freq2, a.stream = stream;
}
#endif

}  // namespace

SPK_REGISTER_BINDINGS(insertion) {
  m.def("insertion_insert_cpu", &insert_cpu_py, py::arg("images"), py::arg("ctf"), py::arg("rotations"),
        py::arg("table"), py::arg("scale"), py::arg("radius"), py::arg("max_freq2"), py::arg("volume"),
        py::arg("weights"), py::arg("method") = "gather",
        "Add centred image spectra (n, N, N) into the half volume (N, N, N/2+1) and weights in place "
        "(Kaiser-Bessel blob table in r^2; method 'gather' or 'scatter').");
  m.def("insertion_extract_cpu", &extract_cpu_py, py::arg("volume"), py::arg("ctf"), py::arg("rotations"),
        py::arg("table"), py::arg("scale"), py::arg("radius"), py::arg("max_freq2"),
        "Slice the half volume at rotated planes with the blob: the adjoint of insertion_insert_cpu (n, N, N).");
#ifdef SPK_WITH_CUDA
  m.def(
      "insertion_insert_cuda",
      [](std::uintptr_t images, std::uintptr_t ctf, std::uintptr_t rotations, std::uintptr_t table,
         std::int64_t table_size, const std::string& dtype, std::int64_t n, std::int64_t N, double scale,
         double radius, double max_freq2, std::uintptr_t volume, std::uintptr_t weights, const std::string& method,
         int block_x, int block_y, int block_z, int batch, bool table_in_shared, int z0, int nz,
         std::uintptr_t stream, const std::string& layout) {
        if (method != "gather" && method != "scatter")
          throw std::invalid_argument("`method` must be 'gather' or 'scatter'");
        if (layout != "slab" && layout != "brick") throw std::invalid_argument("`layout` must be 'slab' or 'brick'");
        with_complex_dtype(dtype, [&](auto zero) {
          using T = decltype(zero);
          using spk::bindings::device_ptr;
          spk::cuda::InsertionInsertLaunch<T> a;
          set_blob_args<T>(a, ctf, rotations, table, table_size, n, N, scale, radius, max_freq2, stream);
          a.images = device_ptr<const std::complex<T>>(images);
          a.volume = device_ptr<std::complex<T>>(volume), a.weights = device_ptr<T>(weights);
          a.gather = method == "gather", a.block_x = block_x, a.block_y = block_y, a.block_z = block_z;
          a.batch = batch, a.table_in_shared = table_in_shared, a.z0 = z0, a.nz = nz, a.slab = layout == "slab";
          py::gil_scoped_release release;
          spk::cuda::insertion_insert(a);
        });
      },
      py::arg("images"), py::arg("ctf"), py::arg("rotations"), py::arg("table"), py::arg("table_size"),
      py::arg("dtype"), py::arg("n"), py::arg("N"), py::arg("scale"), py::arg("radius"), py::arg("max_freq2"),
      py::arg("volume"), py::arg("weights"), py::arg("method") = "gather", py::arg("block_x") = 8,
      py::arg("block_y") = 8, py::arg("block_z") = 4, py::arg("batch") = 64, py::arg("table_in_shared") = true,
      py::arg("z0") = 0, py::arg("nz") = -1, py::arg("stream") = 0, py::arg("layout") = "slab",
      "Device insertion (pointers; ctf 0 for none): gather (no atomics; layout 'slab': columns across each "
      "projection's plane, 'brick': a voxel brick per block; volume and weights may be the z-slab [z0, z0+nz)) "
      "or scatter (atomics, whole volume).");
  m.def(
      "insertion_extract_cuda",
      [](std::uintptr_t volume, std::uintptr_t ctf, std::uintptr_t rotations, std::uintptr_t table,
         std::int64_t table_size, const std::string& dtype, std::int64_t n, std::int64_t N, double scale,
         double radius, double max_freq2, std::uintptr_t out, std::uintptr_t stream) {
        with_complex_dtype(dtype, [&](auto zero) {
          using T = decltype(zero);
          using spk::bindings::device_ptr;
          spk::cuda::InsertionExtractLaunch<T> a;
          set_blob_args<T>(a, ctf, rotations, table, table_size, n, N, scale, radius, max_freq2, stream);
          a.volume = device_ptr<const std::complex<T>>(volume), a.out = device_ptr<std::complex<T>>(out);
          py::gil_scoped_release release;
          spk::cuda::insertion_extract(a);
        });
      },
      py::arg("volume"), py::arg("ctf"), py::arg("rotations"), py::arg("table"), py::arg("table_size"),
      py::arg("dtype"), py::arg("n"), py::arg("N"), py::arg("scale"), py::arg("radius"), py::arg("max_freq2"),
      py::arg("out"), py::arg("stream") = 0, "Device extraction (adjoint of insertion_insert_cuda's volume part).");
#endif
}
