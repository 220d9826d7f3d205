"""Fuzz the public kernel API with bad and edge-case inputs, every call in a worker process.

For every public entry point and CPU backend (numpy, cpu, numba-cpu), hypothesis draws a
baseline (small random valid arguments) and replaces one argument by a mutation from
``tests/fuzz_strategies.py``. The test fails on a crash (signal), a hang (past the per-call
limit), an error slower than 5 s, an exception type other than TypeError / ValueError /
BackendUnavailableError, a message that does not name the argument, a silent acceptance of
clearly invalid input, an input modified in place, or an equivalent input (big-endian,
non-contiguous, read-only, ...) that gives a different result or is refused.

``SPK_FUZZ_EXAMPLES`` sets the cases per function (default 200: 2400 calls over the 12 entry
points, plus a baseline re-run for every equivalent input);
``SPK_FUZZ_REPORT=path.json`` writes the outcome counts per function; ``SPK_FUZZ_RANDOM=1`` draws
new cases (CI draws the same ones every run); ``SPK_FUZZ_BACKENDS=numpy,cpu`` narrows the backends.
"""

from __future__ import annotations

import collections
import json
import os
import time

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fuzz_strategies as fz  # noqa: E402
from spkernels import backends  # noqa: E402

EXAMPLES = int(os.environ.get("SPK_FUZZ_EXAMPLES", "200"))
RANDOM = os.environ.get("SPK_FUZZ_RANDOM", "0") == "1"  # CI draws the same cases every run
CPU_BACKENDS = [b for b in os.environ.get("SPK_FUZZ_BACKENDS", "numpy,cpu,numba-cpu").split(",")
                if backends.is_available(b)]
COUNTS: dict = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module")
def worker():
    w = fz.Worker()
    w.warm = {}
    yield w
    w.close()
    report = os.environ.get("SPK_FUZZ_REPORT")
    if report:
        with open(report, "w") as fh:
            json.dump({"functions": {f: dict(c) for f, c in COUNTS.items()}, "worker_restarts": w.restarts},
                      fh, indent=2, sort_keys=True)


def _warm(worker, func, backend, single):
    """Run the valid baseline once first: it must succeed, and on a JIT backend the first call of a
    function and precision compiles, which the per-call limit of the fuzz cases should not count."""
    key = (func, backend, single)
    if key not in worker.warm:
        reply = worker.call(func, fz.baseline(func, np.random.default_rng(1), backend, single), limit=300)
        worker.warm[key] = reply
    reply = worker.warm[key]
    assert reply["status"] == "ok", f"a valid call of {func} on {backend} (single={single}) fails: {reply}"


def _case(data, func, worker):
    backend = data.draw(st.sampled_from(CPU_BACKENDS), label="backend")
    single = data.draw(st.booleans(), label="single")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    _warm(worker, func, backend, single)
    base = fz.baseline(func, rng, backend, single)
    table = fz.mutations(func)
    arg = data.draw(st.sampled_from(sorted(table)), label="argument")
    label, expect, fn = data.draw(st.sampled_from(table[arg]), label="mutation")
    wide = {np.dtype(np.float64), np.dtype(np.complex128)}
    if label == "list" and np.asarray(base[arg]).dtype not in wide:
        expect = "any"  # a list of Python floats is float64: not the same input as a float32 array
    if arg in fz.OPTIONAL and label.startswith("None"):
        expect = "any"
    args = dict(base)
    with np.errstate(all="ignore"):  # huge-value mutations overflow on purpose
        args[arg] = fn(base.get(arg), rng)
    if isinstance(args[arg], tuple) and func == "checkpoint_load":  # (edit, value)
        args["edit"], args["value"] = args[arg]
    return base, args, arg, label, expect


@pytest.mark.parametrize("func", fz.FUNCTIONS)
def test_fuzz(func, worker):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        base, args, arg, label, expect = _case(data, func, worker)
        reply = worker.call(func, args, compare=base if expect in ("equiv", "same") else None)
        outcome = fz.classify(reply, arg, expect, func)
        COUNTS[func][outcome] += 1
        detail = {k: reply.get(k) for k in ("status", "type", "message", "seconds", "modified", "equal", "signal")}
        assert outcome not in fz.BAD_OUTCOMES, f"{func}({arg}={label}, backend={args.get('backend')}): {outcome}: {detail}"

    run()


def test_worker_sees_crashes_hangs_bad_types_and_modified_inputs():
    w = fz.Worker()
    try:
        crash = w.call("selftest", {"mode": "crash"})
        assert crash["status"] == "crash" and crash["signal"] == 11, crash
        t0 = time.monotonic()
        hang = w.call("selftest", {"mode": "hang"}, limit=2)
        assert hang["status"] == "hang" and time.monotonic() - t0 < 10, hang
        assert fz.classify(hang, "a", "raise") == "hang"
        bad = w.call("selftest", {"mode": "bad-type"})
        assert fz.classify(bad, "mode", "raise") == "wrong-type"
        mod = w.call("selftest", {"mode": "modify", "a": np.ones(3)})
        assert fz.classify(mod, "a", "any") == "modified"
        ok = w.call("selftest", {}, want_result=True)  # a fresh worker after the crash and the hang
        assert ok["status"] == "ok" and np.array_equal(ok["result"][0], np.arange(3.0)) and w.restarts == 2
    finally:
        w.close()
    assert fz.names_argument("`x`, `y`, `z` must share one dtype", "y")
    assert not fz.names_argument("`xy` must be 1-D", "x")
    assert fz.classify({"status": "ok", "modified": []}, "x", "raise") == "silent-acceptance"


THREAD_BACKENDS = [b for b in ("cpu", "numba-cpu") if b in CPU_BACKENDS]
# numba-cpu's cg and fsc kernels are compiled afresh in every process (cache=False), seconds per
# dtype: their thread independence is left to tests/test_cg.py and tests/test_fsc.py's own runs.
_THREAD_SKIP = {("numba-cpu", "cg"), ("numba-cpu", "fsc")}


@pytest.mark.skipif(not THREAD_BACKENDS, reason="no threaded CPU backend here")
def test_results_do_not_depend_on_thread_count(worker):
    """Every entry point's baseline calls give bitwise the same result with 1 thread (the fuzz
    worker) and with 2 threads."""
    two = fz.Worker(dict(os.environ, OMP_NUM_THREADS="2", NUMBA_NUM_THREADS="2"))
    compared = 0
    try:
        for func in fz.FUNCTIONS:
            for backend in THREAD_BACKENDS:
                if (backend, func) in _THREAD_SKIP:
                    continue
                for seed, single in ((0, False), (1, True)):
                    out = []
                    for w in (worker, two):
                        args = fz.baseline(func, np.random.default_rng(seed), backend, single)
                        reply = w.call(func, args, limit=300, want_result=True)
                        assert reply["status"] == "ok", (func, backend, reply)
                        out.append(reply["result"])
                    assert fz._equal(out[0], out[1]), f"{func} on {backend} (single={single}) differs with 2 threads"
                    compared += 1
    finally:
        two.close()
    assert compared >= 2 * len(fz.FUNCTIONS)
