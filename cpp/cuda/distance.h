// Launchers of the distance family's CUDA kernels, callable from plain C++ (the bindings).
// Each takes one argument struct of typed device pointers and sizes; every call enqueues on
// `stream` (a cudaStream_t as an integer, 0 for the default stream) and returns; arguments are
// validated (std::invalid_argument) and every CUDA call is checked (std::runtime_error).
#pragma once
#include <cstdint>
#include <string>

namespace spk::cuda {

// What the top-k and the score matrix share: models against data under a metric.
struct DistanceProblem {
  const float* models = nullptr;   // (R, P)
  const float* data = nullptr;     // (N, P)
  const float* weights = nullptr;  // (P,), or null for all ones
  std::int64_t R = 0, N = 0, P = 0;
  int metric = 0;                  // 0 euclidean, 1 poisson
  std::string precision = "fp32";  // fp32 | 3xtf32 | tf32 | bf16 | fp16
  std::uintptr_t stream = 0;
};

// The shared fields from device pointers held as integers (the Python bindings, the host
// execution C API).
inline void set_problem(DistanceProblem& a, std::uintptr_t models, std::uintptr_t data, std::uintptr_t weights,
                        std::int64_t R, std::int64_t N, std::int64_t P, int metric, const std::string& precision) {
  a.models = reinterpret_cast<const float*>(models);
  a.data = reinterpret_cast<const float*>(data);
  a.weights = reinterpret_cast<const float*>(weights);
  a.R = R, a.N = N, a.P = P, a.metric = metric, a.precision = precision;
}

// For each data row n, the k best models in ascending (score, index) order.
struct TopkLaunch : DistanceProblem {
  int k = 1;
  std::int64_t* out_index = nullptr;  // (N, k)
  float* out_score = nullptr;         // (N, k)
};
void distance_topk(const TopkLaunch& a);

// The full score matrix out (R, N).
struct PairwiseLaunch : DistanceProblem {
  float* out = nullptr;  // (R, N)
};
void pairwise_score(const PairwiseLaunch& a);

// Per segment s of values[offsets[s] : offsets[s+1]]: the local index of the first minimum
// (-1 when empty) and its value (+inf when empty).
struct SegmentedArgminLaunch {
  const float* values = nullptr;          // (offsets[S],); may be null when every segment is empty
  const std::int64_t* offsets = nullptr;  // (S + 1,)
  std::int64_t S = 0;
  std::int64_t* out_index = nullptr;      // (S,)
  float* out_value = nullptr;             // (S,)
  std::uintptr_t stream = 0;
};
void segmented_argmin(const SegmentedArgminLaunch& a);

}  // namespace spk::cuda
