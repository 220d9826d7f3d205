#!/usr/bin/env python3
"""Call each CUDA kernel of ``spkernels._core`` once at a tiny size, for compute-sanitizer.

    compute-sanitizer --tool memcheck  --error-exitcode 1 python3 ci/sanitize_kernels.py
    compute-sanitizer --tool racecheck --error-exitcode 1 python3 ci/sanitize_kernels.py
    python3 ci/sanitize_kernels.py --list     # what exists and what is covered (no GPU needed)

Kernels are found by name: every ``_core`` function ending in ``_cuda``. Each needs a case that
knows its arguments: a function ``case(core, rng)`` that builds tiny random inputs (never
zeros; outputs poisoned with NaN), calls the kernel once and synchronises. Cases come from

- :data:`CASES` below, and
- a ``SANITIZE_CASES = {"<function>_cuda": case, ...}`` dict in any module of
  ``spkernels.bench.cases`` (so a family keeps its case next to its benchmark case).

With ``--strict`` (what ``ci/gpu.sh`` uses) a ``_cuda`` function without a case is an error,
so a new kernel cannot escape the sanitizer by omission.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import numpy as np


def _runtime_copy(core, rng):
    """The runtime's device buffers and d2d copy: proves the sanitizer pipeline runs at all."""
    host = rng.standard_normal(4097)
    src, dst = core.DeviceBuffer(host.nbytes), core.DeviceBuffer(host.nbytes)
    src.copy_from_host(host)
    core.cuda_memcpy_d2d(dst.ptr, src.ptr, host.nbytes)
    back = np.full_like(host, np.nan)
    dst.copy_to_host(back)
    core.cuda_synchronize()
    if not np.array_equal(back, host):
        raise RuntimeError("device copy round trip changed the data")


# Name of a `_core` function (or a pseudo-name for checks that are not one kernel) → case.
# Families: add "<family function>_cuda": case here or in SANITIZE_CASES of your bench case module.
CASES = {
    "runtime:memcpy_d2d": _runtime_copy,
}


def discover_kernels(core) -> list[str]:
    """`_core` functions whose names end in ``_cuda``: the hand-written CUDA launchers."""
    return sorted(n for n in dir(core) if n.endswith("_cuda") and callable(getattr(core, n)))


def registered_cases() -> dict:
    cases = dict(CASES)
    try:
        from spkernels.bench import cases as pkg
    except ImportError:
        return cases
    for mod in pkgutil.iter_modules(pkg.__path__):
        m = importlib.import_module(f"{pkg.__name__}.{mod.name}")
        for name, fn in getattr(m, "SANITIZE_CASES", {}).items():
            if name in cases and cases[name] is not fn:
                raise SystemExit(f"sanitizer case {name!r} is defined twice")
            cases[name] = fn
    return cases


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list kernels and cases, run nothing")
    ap.add_argument("--strict", action="store_true", help="fail when a `_cuda` function has no case")
    ap.add_argument("--only", action="append", help="run only these cases (repeatable)")
    args = ap.parse_args(argv)

    from spkernels import backends

    core = backends.core()
    kernels = discover_kernels(core) if core is not None else []
    cases = registered_cases()
    uncovered = [k for k in kernels if k not in cases]
    if args.list:
        print("CUDA launchers in _core: " + (", ".join(kernels) or "none"))
        print("registered CUDA sanitizer cases: " + ", ".join(sorted(cases)))
        if uncovered:
            print("without a case: " + ", ".join(uncovered))
        return 0

    why = backends._why_unavailable("cuda")
    if why is not None:
        print(f"sanitize_kernels: the cuda backend is unavailable: {why}", file=sys.stderr)
        return 2
    if args.strict and uncovered:
        print("sanitize_kernels: CUDA launchers without a sanitizer case: " + ", ".join(uncovered)
              + " (add one to CASES in ci/sanitize_kernels.py or SANITIZE_CASES in the family's "
              "spkernels/bench/cases module)", file=sys.stderr)
        return 1
    rng = np.random.default_rng(20240601)
    to_run = [n for n in sorted(cases) if (not args.only or n in args.only)]
    failed = 0
    for name in to_run:
        if not name.startswith("runtime:") and name not in kernels:
            print(f"skip {name}: not in this build of _core")
            continue
        try:
            cases[name](core, rng)
            core.cuda_synchronize()
            print(f"ok   {name}")
        except Exception as exc:  # report every case, then fail
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
