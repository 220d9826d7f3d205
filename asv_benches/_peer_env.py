"""Peers run the way a user's fresh process runs them: in a subprocess whose environment has no
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (some machines force an older core type, which
slows a current NumPy), with the BLAS it really loaded reported by threadpoolctl.

:func:`run_peer` runs a snippet in such a process and returns what it printed as JSON;
:func:`blas_config` is the one-line description asv records as a parameter of the benchmarks
that use it.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

#: environment variables a peer's process must not inherit
FORCED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

_INFO = r"""
import json, os
import numpy  # loads its BLAS, which threadpoolctl then sees
try:
    from threadpoolctl import threadpool_info
    pools = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
             for p in threadpool_info() if p.get("user_api") == "blas"]
except ImportError:
    pools = None
print(json.dumps({"numpy": numpy.__version__, "blas": pools}))
"""


def clean_env(threads: int | None = None) -> dict:
    """This process's environment without :data:`FORCED`, with `threads` BLAS/OpenMP threads."""
    env = {k: v for k, v in os.environ.items() if k not in FORCED}
    if threads is not None:
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(int(threads))
    return env


def run_peer(code: str, threads: int | None = None, timeout: float = 900.0) -> dict:
    """Run `code` in a fresh interpreter with :func:`clean_env`; it must print one JSON object last."""
    proc = subprocess.run([sys.executable, "-c", code], env=clean_env(threads), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"peer process failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@functools.lru_cache(maxsize=None)
def blas_config(threads: int) -> str:
    """``'numpy 2.4.6, openblas 0.3.30 Zen x2'``: the peer process's NumPy and BLAS as loaded."""
    try:
        info = run_peer(_INFO, threads, timeout=120)
    except Exception as exc:  # noqa: BLE001 (a description must not stop the suite)
        return f"peer BLAS unknown ({type(exc).__name__})"
    if info["blas"] is None:
        return f"numpy {info['numpy']}, BLAS unknown (threadpoolctl not installed)"
    pools = "; ".join(f"{p['internal_api']} {p['version']} {p['architecture']} x{p['num_threads']}"
                      for p in info["blas"]) or "no BLAS pool"
    return f"numpy {info['numpy']}, {pools}"
