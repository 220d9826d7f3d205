#include "cuda/check.cuh"
#include "cuda/runtime.h"

namespace spk::cuda {

namespace {
cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }
}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return n;
}

DeviceProperties device_properties(int device) {
  cudaDeviceProp p{};
  SPK_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  int clock = 0;
  cudaDeviceGetAttribute(&clock, cudaDevAttrClockRate, device);
  return DeviceProperties{device,           p.name,       p.major, p.minor, p.multiProcessorCount,
                          p.totalGlobalMem, p.sharedMemPerBlockOptin, clock};
}

int current_device() {
  int d = 0;
  SPK_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int device) { SPK_CUDA_CHECK(cudaSetDevice(device)); }

std::size_t free_memory() {
  std::size_t free_b = 0, total_b = 0;
  SPK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return free_b;
}

std::uintptr_t malloc_device(std::size_t nbytes) {
  void* p = nullptr;
  SPK_CUDA_CHECK(cudaMalloc(&p, nbytes == 0 ? 1 : nbytes));
  return reinterpret_cast<std::uintptr_t>(p);
}

void free_device(std::uintptr_t ptr) noexcept {
  if (ptr) cudaFree(reinterpret_cast<void*>(ptr));
}

void memcpy_h2d(std::uintptr_t dst, const void* src, std::size_t nbytes, std::uintptr_t stream) {
  SPK_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst), src, nbytes, cudaMemcpyHostToDevice,
                                 as_stream(stream)));
  SPK_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void memcpy_d2h(void* dst, std::uintptr_t src, std::size_t nbytes, std::uintptr_t stream) {
  SPK_CUDA_CHECK(cudaMemcpyAsync(dst, reinterpret_cast<const void*>(src), nbytes,
                                 cudaMemcpyDeviceToHost, as_stream(stream)));
  SPK_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void memcpy_d2d(std::uintptr_t dst, std::uintptr_t src, std::size_t nbytes, std::uintptr_t stream) {
  SPK_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src),
                                 nbytes, cudaMemcpyDeviceToDevice, as_stream(stream)));
}

void stream_synchronize(std::uintptr_t stream) {
  SPK_CUDA_CHECK(cudaStreamSynchronize(as_stream(stream)));
}

void device_synchronize() { SPK_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace spk::cuda
