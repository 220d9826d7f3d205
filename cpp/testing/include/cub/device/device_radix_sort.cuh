// Host-execution stand-in for CUB's DeviceRadixSort::SortPairs (tests only). It keeps CUB's
// calling protocol (a first call with d_temp_storage == nullptr sizes the scratch; the second
// needs at least that much) and its result: a stable sort of the pairs by key bits
// [begin_bit, end_bit), keys_out holding the full keys.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "spk_host/runtime.h"

namespace cub {

struct DeviceRadixSort {
  template <class K, class V, class NumItemsT>
  static cudaError_t SortPairs(void* d_temp_storage, std::size_t& temp_storage_bytes, const K* keys_in, K* keys_out,
                               const V* values_in, V* values_out, NumItemsT num_items, int begin_bit = 0,
                               int end_bit = static_cast<int>(sizeof(K) * 8), cudaStream_t stream = nullptr) {
    (void)stream;
    const std::size_t need = 256 + sizeof(std::int64_t) * static_cast<std::size_t>(num_items);
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = need;
      return cudaSuccess;
    }
    if (temp_storage_bytes < need || begin_bit < 0 || end_bit > static_cast<int>(sizeof(K) * 8) || begin_bit > end_bit)
      return cudaErrorInvalidValue;
    using U = std::make_unsigned_t<K>;
    const int nbits = end_bit - begin_bit;
    const U field = nbits >= static_cast<int>(sizeof(U) * 8) ? static_cast<U>(~U(0)) : static_cast<U>((U(1) << nbits) - 1);
    auto digit = [&](std::size_t i) { return static_cast<U>(static_cast<U>(keys_in[i]) >> begin_bit) & field; };
    std::vector<std::size_t> order(static_cast<std::size_t>(num_items));
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return digit(a) < digit(b); });
    std::vector<K> k(order.size());
    std::vector<V> v(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      k[i] = keys_in[order[i]];
      v[i] = values_in[order[i]];
    }
    std::copy(k.begin(), k.end(), keys_out);
    std::copy(v.begin(), v.end(), values_out);
    return cudaSuccess;
  }
};

}  // namespace cub
