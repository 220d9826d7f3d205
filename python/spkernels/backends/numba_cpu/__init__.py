"""Numba CPU kernels (``@njit(parallel=True)``), one module per kernel family.

Per-element math shared with the Numba CUDA twins lives in :mod:`spkernels.backends.numba_math`
as plain ``@njit`` functions, which both ``prange`` loops and ``@cuda.jit`` kernels call.
"""
