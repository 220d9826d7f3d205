"""Per-element math written once as ``@njit`` functions, called by the Numba CPU ``prange`` loops
and by the Numba CUDA kernels alike (numba-cuda compiles ``@njit`` callees for the device)."""
