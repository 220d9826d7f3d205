// Host-execution stand-in for <mma.h>, the WMMA fragment API (tests only), for the shapes and
// precisions the kernels use: m16n16k8 tf32 and m16n16k16 fp16 / bf16, fp32 accumulators.
//
// A fragment is spread over the warp: lane l holds elements l*E .. l*E+E-1 (E = num_elements)
// of the fragment's logical matrix in row-major order. The GPU's layout is opaque and the
// kernels touch `x[]` only element-wise, so any fixed layout behaves the same.
// load/store/mma are warp collectives: every lane of the warp must take part, with the same
// pointer and leading dimension (checked), pointers 32-byte aligned and ldm a multiple of
// 16 bytes (checked, as the hardware requires).
// mma_sync: the inputs are read as the tensor core reads them (tf32: the top 19 bits of the
// float, the low 13 mantissa bits ignored; fp16 / bf16 exactly), the products are exact in
// fp32, and each output is accumulated in fp32 in k order starting from C. The hardware's
// internal accumulation order and rounding are not reproduced bit for bit.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "spk_host/runtime.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

namespace detail {
template <class Use, int M, int N, int K>
struct Dims;
template <int M, int N, int K>
struct Dims<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct Dims<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct Dims<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};
template <class T>
struct Elem {
  using type = T;
};
template <>
struct Elem<precision::tf32> {
  using type = float;
};

inline float as_float(float v) { return v; }
inline float as_float(__half v) { return __half2float(v); }
inline float as_float(__nv_bfloat16 v) { return __bfloat162float(v); }

// What the tensor core sees of an input element.
template <class T>
inline float mma_input(const typename Elem<T>::type& v) {
  if constexpr (std::is_same_v<T, precision::tf32>) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    u &= 0xffffe000u;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  } else {
    return as_float(v);
  }
}

template <class Layout>
constexpr bool is_col = std::is_same_v<Layout, col_major>;
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  using element_type = typename detail::Elem<T>::type;
  using storage_element_type = element_type;
  static constexpr int rows = detail::Dims<Use, M, N, K>::rows;
  static constexpr int cols = detail::Dims<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols / 32;
  static_assert(rows * cols % 32 == 0, "fragment size must be a multiple of the warp");
  element_type x[num_elements];
};

// tf32 rounding as cvt.rna.tf32.f32: to nearest, ties away from zero, 10 mantissa bits kept.
inline float __float_to_tf32(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) {  // finite
    u += 0x1000u;
    u &= 0xffffe000u;
  }
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

namespace detail {

inline const char kLoad[] = "wmma::load_matrix_sync";
inline const char kStore[] = "wmma::store_matrix_sync";
inline const char kMma[] = "wmma::mma_sync";

inline int lane_id() {
  const unsigned t = spk_host::g_thread_idx.x +
                     spk_host::g_block_dim.x * (spk_host::g_thread_idx.y + spk_host::g_block_dim.y * spk_host::g_thread_idx.z);
  return static_cast<int>(t % 32);
}

// Every lane passed the same pointer (value) and leading dimension (param).
inline void compute_uniform(spk_host::LaneSlot* s, unsigned mask) {
  int first = -1;
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    if (first < 0) first = l;
    if (s[l].value != s[first].value || s[l].param != s[first].param)
      spk_host::kernel_fault("WMMA load/store: the lanes of a warp passed different pointers or ldm");
  }
}

template <class E>
inline void check_access(const void* p, unsigned ldm, const char* what) {
  if (reinterpret_cast<std::uintptr_t>(p) % 32 != 0) spk_host::kernel_fault("WMMA load/store: pointer not 32-byte aligned");
  if ((static_cast<std::size_t>(ldm) * sizeof(E)) % 16 != 0)
    spk_host::kernel_fault("WMMA load/store: ldm is not a multiple of 16 bytes");
  spk_host::LaneSlot in{};
  in.value = reinterpret_cast<std::uintptr_t>(p);
  in.param = ldm;
  spk_host::warp_collective(what, 0xffffffffu, in, compute_uniform);
}

}  // namespace detail

template <class Use, int M, int N, int K, class T, class L>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, const typename fragment<Use, M, N, K, T, L>::element_type& v) {
  for (int e = 0; e < f.num_elements; ++e) f.x[e] = v;
}

// matrix_a / matrix_b: the layout is part of the fragment type.
template <class Use, int M, int N, int K, class T, class L, class E>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const E* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, L>;
  static_assert(!std::is_void_v<L>, "this load needs a fragment with a layout");
  static_assert(std::is_same_v<std::remove_cv_t<E>, typename F::element_type>, "WMMA load: pointer type != fragment type");
  detail::check_access<E>(p, ldm, detail::kLoad);
  const int lane = detail::lane_id();
  for (int e = 0; e < F::num_elements; ++e) {
    const int lin = lane * F::num_elements + e, r = lin / F::cols, c = lin % F::cols;
    f.x[e] = detail::is_col<L> ? p[static_cast<std::size_t>(c) * ldm + r] : p[static_cast<std::size_t>(r) * ldm + c];
  }
}

// accumulator: the memory layout is an argument.
template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t layout) {
  using F = fragment<accumulator, M, N, K, float>;
  detail::check_access<float>(p, ldm, detail::kLoad);
  const int lane = detail::lane_id();
  for (int e = 0; e < F::num_elements; ++e) {
    const int lin = lane * F::num_elements + e, r = lin / F::cols, c = lin % F::cols;
    f.x[e] = layout == mem_col_major ? p[static_cast<std::size_t>(c) * ldm + r] : p[static_cast<std::size_t>(r) * ldm + c];
  }
}

template <int M, int N, int K>
inline void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
  using F = fragment<accumulator, M, N, K, float>;
  detail::check_access<float>(p, ldm, detail::kStore);
  const int lane = detail::lane_id();
  for (int e = 0; e < F::num_elements; ++e) {
    const int lin = lane * F::num_elements + e, r = lin / F::cols, c = lin % F::cols;
    (layout == mem_col_major ? p[static_cast<std::size_t>(c) * ldm + r] : p[static_cast<std::size_t>(r) * ldm + c]) = f.x[e];
  }
}

namespace detail {

// The last lane to arrive computes D = A B + C for the whole warp. p[0..3]: this lane's d, a, b, c.
template <int M, int N, int K, class T, class LA, class LB>
inline void compute_mma(spk_host::LaneSlot* s, unsigned) {
  using FA = fragment<matrix_a, M, N, K, T, LA>;
  using FB = fragment<matrix_b, M, N, K, T, LB>;
  using FC = fragment<accumulator, M, N, K, float>;
  float A[M][K], B[K][N], C[M][N];
  for (int l = 0; l < 32; ++l) {
    const auto* a = static_cast<const FA*>(s[l].p[1]);
    const auto* b = static_cast<const FB*>(s[l].p[2]);
    const auto* c = static_cast<const FC*>(s[l].p[3]);
    for (int e = 0; e < FA::num_elements; ++e) {
      const int lin = l * FA::num_elements + e;
      A[lin / K][lin % K] = mma_input<T>(a->x[e]);
    }
    for (int e = 0; e < FB::num_elements; ++e) {
      const int lin = l * FB::num_elements + e;
      B[lin / N][lin % N] = mma_input<T>(b->x[e]);
    }
    for (int e = 0; e < FC::num_elements; ++e) {
      const int lin = l * FC::num_elements + e;
      C[lin / N][lin % N] = c->x[e];
    }
  }
  for (int l = 0; l < 32; ++l) {
    auto* d = static_cast<FC*>(const_cast<void*>(s[l].p[0]));
    for (int e = 0; e < FC::num_elements; ++e) {
      const int lin = l * FC::num_elements + e, i = lin / N, j = lin % N;
      float acc = C[i][j];
      for (int k = 0; k < K; ++k) acc += A[i][k] * B[k][j];
      d->x[e] = acc;
    }
  }
}

}  // namespace detail

template <int M, int N, int K, class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
                     const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  spk_host::LaneSlot in{};
  in.p[0] = &d;
  in.p[1] = &a;
  in.p[2] = &b;
  in.p[3] = &c;
  spk_host::warp_collective(detail::kMma, 0xffffffffu, in, detail::compute_mma<M, N, K, T, LA, LB>);
}

}  // namespace nvcuda::wmma
