// Thin CUDA runtime wrappers callable from plain C++ (the bindings never include CUDA headers).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace spk::cuda {

struct DeviceProperties {
  int index;
  std::string name;
  int major, minor;
  int multiprocessors;
  std::size_t total_memory;
  std::size_t shared_memory_per_block_optin;
  int clock_khz;
};

int device_count();  // 0 when no driver or no device; never throws
DeviceProperties device_properties(int device);
int current_device();
void set_device(int device);
std::size_t free_memory();

std::uintptr_t malloc_device(std::size_t nbytes);
void free_device(std::uintptr_t ptr) noexcept;
void memcpy_h2d(std::uintptr_t dst, const void* src, std::size_t nbytes, std::uintptr_t stream);
void memcpy_d2h(void* dst, std::uintptr_t src, std::size_t nbytes, std::uintptr_t stream);
void memcpy_d2d(std::uintptr_t dst, std::uintptr_t src, std::size_t nbytes, std::uintptr_t stream);
void stream_synchronize(std::uintptr_t stream);
void device_synchronize();

// A device pointer handed over as an integer (from Python or ctypes), typed for a launcher's
// argument struct.
template <class T>
T* device_ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

}  // namespace spk::cuda
