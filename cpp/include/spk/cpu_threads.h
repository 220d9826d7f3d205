// OpenMP thread queries shared by the C++ CPU kernels (1 thread, id 0, when built without OpenMP).
#pragma once

#ifdef SPK_WITH_OPENMP
#include <omp.h>
#endif

namespace spk::cpu {

inline int max_threads() {
#ifdef SPK_WITH_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_id() {
#ifdef SPK_WITH_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int num_threads() {
#ifdef SPK_WITH_OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

}  // namespace spk::cpu
