// C ABI over every launcher of cpp/cuda/*.h, for the host-execution tests (ctypes). Each wrapper
// returns 0, or 1 for std::invalid_argument and 2 for any other exception, whose message
// spkh_error() then returns. Pointers are the emulated device pointers, as integers.
#include <complex>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

// SPKH_WITH_<FAMILY> says which .cu files are in the library (a harness test builds only some).
#include "cuda/runtime.h"
#ifdef SPKH_WITH_CG
#include "cuda/cg.h"
#endif
#ifdef SPKH_WITH_DISTANCE
#include "cuda/distance.h"
#endif
#ifdef SPKH_WITH_FSC
#include "cuda/fsc.h"
#endif
#ifdef SPKH_WITH_NUFFT
#include "cuda/nufft.h"
#endif
#ifdef SPKH_WITH_INSERTION
#include "cuda/insertion.h"
#endif

namespace {
std::string g_error;

template <class F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::invalid_argument& e) {
    g_error = e.what();
    return 1;
  } catch (const std::exception& e) {
    g_error = e.what();
    return 2;
  }
}
using u64 = std::uintptr_t;
using i64 = std::int64_t;

// The NUFFT wrappers' precision code: 4 (float32 points, complex64) or 8 (float64, complex128).
void check_prec(int prec) {
  if (prec != 4 && prec != 8) throw std::invalid_argument("`dtype` must be 'f32' or 'f64'");
}

// Calls f(float{}) when `single`, else f(double{}): the launchers' typed argument structs.
template <class F>
void with_real_type(int single, F&& f) {
  if (single)
    f(float{});
  else
    f(double{});
}
}  // namespace

using namespace spk::cuda;

extern "C" {

const char* spkh_error() { return g_error.c_str(); }

// ---- runtime.h ----
int spkh_device_count() { return device_count(); }
int spkh_device_properties(int device, char* name, int name_len, int* ints4, unsigned long long* sizes2) {
  return guarded([&] {
    const DeviceProperties p = device_properties(device);
    std::strncpy(name, p.name.c_str(), static_cast<std::size_t>(name_len) - 1);
    name[name_len - 1] = 0;
    ints4[0] = p.major;
    ints4[1] = p.minor;
    ints4[2] = p.multiprocessors;
    ints4[3] = p.clock_khz;
    sizes2[0] = p.total_memory;
    sizes2[1] = p.shared_memory_per_block_optin;
  });
}
int spkh_current_device(int* out) {
  return guarded([&] { *out = current_device(); });
}
int spkh_set_device(int d) {
  return guarded([&] { set_device(d); });
}
int spkh_free_memory(unsigned long long* out) {
  return guarded([&] { *out = free_memory(); });
}
int spkh_malloc_device(unsigned long long n, u64* out) {
  return guarded([&] { *out = malloc_device(n); });
}
void spkh_free_device(u64 p) { free_device(p); }
int spkh_memcpy_h2d(u64 dst, const void* src, unsigned long long n, u64 s) {
  return guarded([&] { memcpy_h2d(dst, src, n, s); });
}
int spkh_memcpy_d2h(void* dst, u64 src, unsigned long long n, u64 s) {
  return guarded([&] { memcpy_d2h(dst, src, n, s); });
}
int spkh_memcpy_d2d(u64 dst, u64 src, unsigned long long n, u64 s) {
  return guarded([&] { memcpy_d2d(dst, src, n, s); });
}
int spkh_stream_synchronize(u64 s) {
  return guarded([&] { stream_synchronize(s); });
}
int spkh_device_synchronize() {
  return guarded([&] { device_synchronize(); });
}

#ifdef SPKH_WITH_DISTANCE
// ---- distance.h ----
int spkh_distance_topk(u64 models, u64 data, u64 weights, i64 R, i64 N, i64 P, int metric, int k,
                       const char* precision, u64 out_index, u64 out_score, u64 stream) {
  TopkLaunch a;
  set_problem(a, models, data, weights, R, N, P, metric, precision);
  a.k = k;
  a.out_index = device_ptr<i64>(out_index);
  a.out_score = device_ptr<float>(out_score);
  a.stream = stream;
  return guarded([&] { distance_topk(a); });
}
int spkh_pairwise_score(u64 models, u64 data, u64 weights, i64 R, i64 N, i64 P, int metric, const char* precision,
                        u64 out, u64 stream) {
  PairwiseLaunch a;
  set_problem(a, models, data, weights, R, N, P, metric, precision);
  a.out = device_ptr<float>(out);
  a.stream = stream;
  return guarded([&] { pairwise_score(a); });
}
int spkh_segmented_argmin(u64 values, u64 offsets, i64 S, u64 out_index, u64 out_value, u64 stream) {
  SegmentedArgminLaunch a;
  a.values = device_ptr<const float>(values);
  a.offsets = device_ptr<const i64>(offsets);
  a.S = S;
  a.out_index = device_ptr<i64>(out_index);
  a.out_value = device_ptr<float>(out_value);
  a.stream = stream;
  return guarded([&] { segmented_argmin(a); });
}
#endif

#ifdef SPKH_WITH_NUFFT
// ---- nufft.h ----
int spkh_nufft_setpts(u64 x, u64 y, u64 z, i64 M, i64 n1, i64 n2, i64 n3, i64 bs1, i64 bs2, i64 bs3, int prec,
                      u64 perm, u64 offsets, u64 stream) {
  return guarded([&] {
    check_prec(prec);
    with_real_type(prec == 4, [&](auto zero) {
      using T = decltype(zero);
      NufftSetptsLaunch<T> a;
      a.x = device_ptr<const T>(x), a.y = device_ptr<const T>(y), a.z = device_ptr<const T>(z), a.M = M;
      a.n1 = n1, a.n2 = n2, a.n3 = n3, a.bs1 = bs1, a.bs2 = bs2, a.bs3 = bs3;
      a.perm = device_ptr<i64>(perm), a.bin_offsets = device_ptr<i64>(offsets), a.stream = stream;
      nufft_setpts(a);
    });
  });
}
int spkh_nufft_spread(u64 x, u64 y, u64 z, u64 c, i64 V, i64 M, u64 perm, u64 offsets, i64 n1, i64 n2, i64 n3,
                      i64 bs1, i64 bs2, i64 bs3, int w, double beta, int prec, int gather, u64 fine, u64 stream) {
  return guarded([&] {
    check_prec(prec);
    with_real_type(prec == 4, [&](auto zero) {
      using T = decltype(zero);
      NufftSpreadLaunch<T> a;
      a.x = device_ptr<const T>(x), a.y = device_ptr<const T>(y), a.z = device_ptr<const T>(z);
      a.c = device_ptr<const std::complex<T>>(c), a.V = V, a.M = M;
      a.perm = device_ptr<const i64>(perm), a.bin_offsets = device_ptr<const i64>(offsets);
      a.n1 = n1, a.n2 = n2, a.n3 = n3, a.bs1 = bs1, a.bs2 = bs2, a.bs3 = bs3, a.w = w, a.beta = beta;
      a.gather = gather != 0, a.fine = device_ptr<std::complex<T>>(fine), a.stream = stream;
      nufft_spread(a);
    });
  });
}
int spkh_nufft_interp(u64 x, u64 y, u64 z, u64 fine, i64 V, i64 M, u64 perm, i64 n1, i64 n2, i64 n3, int w,
                      double beta, int prec, u64 c, u64 stream) {
  return guarded([&] {
    check_prec(prec);
    with_real_type(prec == 4, [&](auto zero) {
      using T = decltype(zero);
      NufftInterpLaunch<T> a;
      a.x = device_ptr<const T>(x), a.y = device_ptr<const T>(y), a.z = device_ptr<const T>(z);
      a.fine = device_ptr<const std::complex<T>>(fine), a.V = V, a.M = M, a.perm = device_ptr<const i64>(perm);
      a.n1 = n1, a.n2 = n2, a.n3 = n3, a.w = w, a.beta = beta, a.c = device_ptr<std::complex<T>>(c);
      a.stream = stream;
      nufft_interp(a);
    });
  });
}
#endif

#ifdef SPKH_WITH_CG
// ---- cg.h ----
int spkh_cg_work_doubles() { return kCgWorkDoubles; }
int spkh_cg_dot(u64 a, u64 b, i64 n, int cplx, int single, u64 state, u64 hist, int which, u64 work, u64 stream) {
  return guarded([&] {
    with_real_type(single, [&](auto zero) {
      using T = decltype(zero);
      CgDotLaunch<T> l;
      l.a = device_ptr<const T>(a), l.b = device_ptr<const T>(b), l.n = n, l.cplx = cplx != 0;
      l.state = device_ptr<double>(state), l.hist = device_ptr<double>(hist), l.which = which;
      l.work = device_ptr<double>(work), l.stream = stream;
      cg_dot(l);
    });
  });
}
int spkh_cg_update_xr(u64 x, u64 r, u64 p, u64 q, i64 n, int single, u64 state, u64 hist, u64 work, u64 stream) {
  return guarded([&] {
    with_real_type(single, [&](auto zero) {
      using T = decltype(zero);
      CgUpdateXrLaunch<T> l;
      l.x = device_ptr<T>(x), l.r = device_ptr<T>(r), l.p = device_ptr<const T>(p), l.q = device_ptr<const T>(q);
      l.n = n, l.state = device_ptr<double>(state), l.hist = device_ptr<double>(hist);
      l.work = device_ptr<double>(work), l.stream = stream;
      cg_update_xr(l);
    });
  });
}
int spkh_cg_update_p(u64 p, u64 z, i64 n, int single, u64 state, u64 stream) {
  return guarded([&] {
    with_real_type(single, [&](auto zero) {
      using T = decltype(zero);
      CgUpdatePLaunch<T> l;
      l.p = device_ptr<T>(p), l.z = device_ptr<const T>(z), l.n = n, l.state = device_ptr<const double>(state);
      l.stream = stream;
      cg_update_p(l);
    });
  });
}
int spkh_cg_residual(u64 r, u64 b, u64 q, i64 n, int single, u64 stream) {
  return guarded([&] {
    with_real_type(single, [&](auto zero) {
      using T = decltype(zero);
      CgResidualLaunch<T> l;
      l.r = device_ptr<T>(r), l.b = device_ptr<const T>(b), l.q = device_ptr<const T>(q), l.n = n;
      l.stream = stream;
      cg_residual(l);
    });
  });
}
#endif

#ifdef SPKH_WITH_FSC
// ---- fsc.h ----
int spkh_fsc_accumulate(u64 f1, u64 f2, int single, i64 nz, i64 ny, i64 nx, double az, double ay, double ax,
                        int n_shells, u64 sums, u64 stream) {
  return guarded([&] {
    with_real_type(single, [&](auto zero) {
      using T = decltype(zero);
      FscLaunch<T> l;
      l.f1 = device_ptr<const std::complex<T>>(f1), l.f2 = device_ptr<const std::complex<T>>(f2);
      l.nz = nz, l.ny = ny, l.nx = nx, l.az = az, l.ay = ay, l.ax = ax, l.n_shells = n_shells;
      l.sums = device_ptr<double>(sums), l.stream = stream;
      fsc_accumulate(l);
    });
  });
}
#endif

#ifdef SPKH_WITH_INSERTION
// ---- insertion.h ----
// gather: 0 scatter, 1 slab gather, 2 brick gather. z0, nz: the z-slab [z0, z0 + nz) that volume
// and weights hold (gather; 0, N for all of it).
int spkh_insertion_insert(u64 images, u64 ctf, u64 rotations, u64 table, i64 table_size, int single, i64 n, i64 N,
                          double scale, double radius, double max_freq2, u64 volume, u64 weights, int gather, int bx,
                          int by, int bz, int batch, int table_in_shared, int z0, int nz, u64 stream) {
  return guarded([&] {
    with_real_type(single, [&](auto zero) {
      using T = decltype(zero);
      InsertionInsertLaunch<T> a;
      a.images = device_ptr<const std::complex<T>>(images), a.ctf = device_ptr<const T>(ctf);
      a.rotations = device_ptr<const T>(rotations), a.table = device_ptr<const T>(table);
      a.table_size = table_size, a.n = n, a.N = N, a.scale = scale, a.radius = radius, a.max_freq2 = max_freq2;
      a.volume = device_ptr<std::complex<T>>(volume), a.weights = device_ptr<T>(weights);
      a.gather = gather != 0, a.slab = gather != 2, a.block_x = bx, a.block_y = by, a.block_z = bz, a.batch = batch;
      a.table_in_shared = table_in_shared != 0, a.z0 = z0, a.nz = nz, a.stream = stream;
      insertion_insert(a);
    });
  });
}
int spkh_insertion_extract(u64 volume, u64 ctf, u64 rotations, u64 table, i64 table_size, int single, i64 n, i64 N,
                           double scale, double radius, double max_freq2, u64 out, u64 stream) {
  return guarded([&] {
    with_real_type(single, [&](auto zero) {
      using T = decltype(zero);
      InsertionExtractLaunch<T> a;
      a.volume = device_ptr<const std::complex<T>>(volume), a.ctf = device_ptr<const T>(ctf);
      a.rotations = device_ptr<const T>(rotations), a.table = device_ptr<const T>(table);
      a.table_size = table_size, a.n = n, a.N = N, a.scale = scale, a.radius = radius, a.max_freq2 = max_freq2;
      a.out = device_ptr<std::complex<T>>(out), a.stream = stream;
      insertion_extract(a);
    });
  });
}
#endif

}  // extern "C"
