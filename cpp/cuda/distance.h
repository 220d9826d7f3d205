// Launchers of the distance family's CUDA kernels, callable from plain C++ (the bindings).
// All pointers are device pointers passed as integers; every call enqueues on `stream` and
// returns; arguments are validated (std::invalid_argument) and every CUDA call is checked
// (std::runtime_error).
#pragma once
#include <cstdint>
#include <string>

namespace spk::cuda {

// For each data row n, the k best models in ascending (score, index) order.
// models (R,P) float32, data (N,P) float32, weights (P,) float32 or 0 for all ones;
// out_index (N,k) int64, out_score (N,k) float32. precision: fp32 | 3xtf32 | tf32 | bf16 | fp16.
void distance_topk(std::uintptr_t models, std::uintptr_t data, std::uintptr_t weights, std::int64_t R,
                   std::int64_t N, std::int64_t P, int metric, int k, const std::string& precision,
                   std::uintptr_t out_index, std::uintptr_t out_score, std::uintptr_t stream);

// The full score matrix out (R,N) float32.
void pairwise_score(std::uintptr_t models, std::uintptr_t data, std::uintptr_t weights, std::int64_t R,
                    std::int64_t N, std::int64_t P, int metric, const std::string& precision,
                    std::uintptr_t out, std::uintptr_t stream);

// values float32 (offsets[S],), offsets int64 (S+1,): per segment the local index of the
// first minimum (-1 when empty) and its value (+inf when empty).
void segmented_argmin(std::uintptr_t values, std::uintptr_t offsets, std::int64_t S, std::uintptr_t out_index,
                      std::uintptr_t out_value, std::uintptr_t stream);

}  // namespace spk::cuda
