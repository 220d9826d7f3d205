// Device discovery and a minimal owning device buffer, so the `cuda` backend works on NumPy
// input without CuPy. Python wraps DeviceBuffer with a shape, dtype and __cuda_array_interface__.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>

#include "registry.h"
#ifdef SPK_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace py = pybind11;

namespace {

#ifdef SPK_WITH_CUDA
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t nbytes) : nbytes_(nbytes), ptr_(spk::cuda::malloc_device(nbytes)) {}
  ~DeviceBuffer() { spk::cuda::free_device(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  std::uintptr_t ptr() const { return ptr_; }
  std::size_t nbytes() const { return nbytes_; }

  void copy_from_host(py::buffer src, std::uintptr_t stream) {
    py::buffer_info info = src.request();
    const std::size_t n = static_cast<std::size_t>(info.size * info.itemsize);
    if (n != nbytes_) throw std::invalid_argument("`src` has " + std::to_string(n) + " bytes, buffer has " + std::to_string(nbytes_));
    if (!is_c_contiguous(info)) throw std::invalid_argument("`src` must be C-contiguous");
    py::gil_scoped_release release;
    spk::cuda::memcpy_h2d(ptr_, info.ptr, n, stream);
  }
  void copy_to_host(py::buffer dst, std::uintptr_t stream) const {
    py::buffer_info info = dst.request(true);
    const std::size_t n = static_cast<std::size_t>(info.size * info.itemsize);
    if (n != nbytes_) throw std::invalid_argument("`dst` has " + std::to_string(n) + " bytes, buffer has " + std::to_string(nbytes_));
    if (!is_c_contiguous(info)) throw std::invalid_argument("`dst` must be C-contiguous");
    py::gil_scoped_release release;
    spk::cuda::memcpy_d2h(info.ptr, ptr_, n, stream);
  }

 private:
  static bool is_c_contiguous(const py::buffer_info& info) {
    py::ssize_t expect = info.itemsize;
    for (py::ssize_t d = info.ndim - 1; d >= 0; --d) {
      if (info.shape[d] != 1 && info.strides[d] != expect) return false;
      expect *= info.shape[d];
    }
    return true;
  }
  std::size_t nbytes_;
  std::uintptr_t ptr_;
};
#endif

}  // namespace

SPK_REGISTER_BINDINGS(runtime) {
#ifdef SPK_WITH_CUDA
  m.def("cuda_device_count", &spk::cuda::device_count, "Number of visible CUDA devices (0 without a driver).");
  m.def(
      "cuda_device_properties",
      [](int device) {
        auto p = spk::cuda::device_properties(device);
        py::dict d;
        d["index"] = p.index;
        d["name"] = p.name;
        d["compute_capability"] = py::make_tuple(p.major, p.minor);
        d["multiprocessors"] = p.multiprocessors;
        d["total_memory"] = p.total_memory;
        d["shared_memory_per_block_optin"] = p.shared_memory_per_block_optin;
        d["clock_khz"] = p.clock_khz;
        return d;
      },
      py::arg("device"));
  m.def("cuda_current_device", &spk::cuda::current_device);
  m.def("cuda_set_device", &spk::cuda::set_device, py::arg("device"));
  m.def("cuda_free_memory", &spk::cuda::free_memory);
  m.def("cuda_synchronize", []() {
    py::gil_scoped_release r;
    spk::cuda::device_synchronize();
  });
  m.def("cuda_stream_synchronize", [](std::uintptr_t s) {
    py::gil_scoped_release r;
    spk::cuda::stream_synchronize(s);
  }, py::arg("stream"));
  m.def("cuda_memcpy_d2d", &spk::cuda::memcpy_d2d, py::arg("dst"), py::arg("src"), py::arg("nbytes"), py::arg("stream") = 0);
  py::class_<DeviceBuffer>(m, "DeviceBuffer", "Owning cudaMalloc allocation (freed with the object).")
      .def(py::init<std::size_t>(), py::arg("nbytes"))
      .def_property_readonly("ptr", &DeviceBuffer::ptr)
      .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
      .def("copy_from_host", &DeviceBuffer::copy_from_host, py::arg("src"), py::arg("stream") = 0)
      .def("copy_to_host", &DeviceBuffer::copy_to_host, py::arg("dst"), py::arg("stream") = 0);
#else
  m.def("cuda_device_count", []() { return 0; }, "Always 0: this build has no CUDA.");
#endif
}
