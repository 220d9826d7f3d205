"""Benchmark tooling shared by ``spkernels bench`` and the asv suite in ``asv_benches/``.

- :mod:`~spkernels.bench.machine`: machine names that carry the GPU model (``h100-sxm``,
  ``h200``, ``cpu-2core``), under which asv files results.
- :mod:`~spkernels.bench.timing`: device synchronisation and a median timer.
- :mod:`~spkernels.bench.ceilings`: this machine's measured GEMM rate and copy bandwidth,
  cached per process and shared between processes through a JSON file.
- :mod:`~spkernels.bench.registry`: benchmark cases; families register one module each in
  ``spkernels.bench.cases``.
- :mod:`~spkernels.bench.compare`: the C++ vs Numba comparison behind ``spkernels bench compare``.
"""
