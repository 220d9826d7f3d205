"""Our own fuzz strategies for the public kernel API, and the worker process that runs them.

Every public entry point has a *baseline*: small random valid arguments (never zeros) built
from a seed. A fuzz case is the baseline with one argument replaced by a *mutation*, which
says what must happen:

- ``"raise"``: clearly invalid input; the call must raise TypeError, ValueError or
  BackendUnavailableError whose message names the argument (in backticks);
- ``"equiv"``: the same values in another form (big-endian, non-contiguous, read-only,
  Fortran order, a list, a NumPy scalar); the call must succeed and return bitwise what the
  baseline returns;
- ``"any"``: an edge case that may be accepted or refused (an empty segment list, integer
  weights); a refusal must still be a clear TypeError/ValueError naming the argument;
- ``"same"``: may be refused, but if accepted must return bitwise the baseline's result (a
  checkpoint with a flipped byte loads as written or not at all).

For every case the worker also checks that no input array was modified in place. Cases run in
a separate worker process (:class:`Worker`) with a time limit per call, so a crash (signal) or
a hang is seen as such and the worker is restarted.

Run ``python tests/fuzz_strategies.py --worker`` to start a worker by hand (it speaks
length-prefixed pickles on stdin/stdout).
"""

from __future__ import annotations

import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import time
import traceback

import numpy as np

# --------------------------------------------------------------------------- special values

#: wrappers resolved inside the worker (pickling would lose strides and the read-only flag)
WRAP = "__spk_fuzz_wrap__"


def wrap(kind, payload):
    return (WRAP, kind, payload)


def _resolve(v):
    if isinstance(v, tuple) and len(v) == 3 and v[0] == WRAP:
        kind, a = v[1], _resolve(v[2])
        if kind == "noncontig":  # same values, every other element of a twice-as-long buffer
            big = np.repeat(a[..., None], 2, axis=-1)
            return big[..., 0]
        if kind == "readonly":
            a = np.array(a)
            a.setflags(write=False)
            return a
        if kind == "fortran":
            return np.asfortranarray(a)
        if kind == "matrix":  # an SPD matrix as operator for cg
            return a
        raise ValueError(kind)
    return v


# --------------------------------------------------------------------------- runners
# Each runner makes the public call(s) and returns a tuple of NumPy arrays (the result).


def _np(*arrays):
    return tuple(np.asarray(a) for a in arrays)


def run_distance_argmin(models, data, metric="euclidean", weights=None, k=1, precision="auto", backend="auto"):
    from spkernels.kernels import distance_argmin

    r = distance_argmin(models, data, metric=metric, weights=weights, k=k, precision=precision, backend=backend)
    return _np(r.index, r.score)


def run_pairwise_sqdist(models, data, weights=None, precision="auto", backend="auto"):
    from spkernels.kernels import pairwise_sqdist

    return _np(pairwise_sqdist(models, data, weights=weights, precision=precision, backend=backend))


def run_error_bound(models, data, metric="euclidean", weights=None, precision="fp32"):
    from spkernels.kernels import error_bound

    return _np(error_bound(models, data, metric=metric, weights=weights, precision=precision))


def run_segmented_argmin(values, offsets, backend="auto"):
    from spkernels.kernels import segmented_argmin

    return _np(*segmented_argmin(values, offsets, backend=backend))


def run_accumulator(n_data, k, data, model_batch, first_index, indices, scores, metric="euclidean", weights=None,
                    precision="auto", backend="auto"):
    from spkernels.kernels import ArgminAccumulator

    acc = ArgminAccumulator(n_data, k, data=data, metric=metric, weights=weights, precision=precision,
                            backend=backend)
    acc.update(model_batch, first_index)
    acc.offer(indices, scores)
    r = acc.result()
    return _np(r.index, r.score)


def run_nufft3d1(x, y, z, c, n_modes, eps=1e-6, backend="auto", method="gather", upsampfac=2.0):
    from spkernels.kernels import nufft3d1

    return _np(nufft3d1(x, y, z, c, n_modes, eps=eps, backend=backend, method=method, upsampfac=upsampfac))


def run_nufft3d2(x, y, z, f, eps=1e-6, backend="auto", upsampfac=2.0):
    from spkernels.kernels import nufft3d2

    return _np(nufft3d2(x, y, z, f, eps=eps, backend=backend, upsampfac=upsampfac))


def run_plan(nufft_type, n_modes, x, y, z, data, eps=1e-6, dtype="complex128", n_trans=1, backend="auto",
             method="gather", upsampfac=2.0):
    from spkernels.kernels import Plan

    plan = Plan(nufft_type, n_modes, eps=eps, dtype=dtype, n_trans=n_trans, backend=backend, method=method,
                upsampfac=upsampfac)
    plan.setpts(x, y, z)
    return _np(plan.execute(data))


def run_cg(A, b, x0=None, tol=1e-8, atol=0.0, maxiter=50, check_every=None, backend="auto"):
    from spkernels.kernels import cg

    r = cg(A, b, x0=x0, tol=tol, atol=atol, maxiter=maxiter, check_every=check_every, backend=backend)
    return _np(r.x, r.residuals)


def run_toeplitz(x, y, z, n_modes, u, weights=None, eps=1e-9, backend="auto", values=None):
    from spkernels.kernels import ToeplitzNormalOperator

    op = ToeplitzNormalOperator(x, y, z, n_modes, weights, eps=eps, backend=backend, values=values)
    out = [op.matvec(u)]
    if op.adjoint is not None:
        out.append(op.adjoint)
    return _np(*out)


def run_fsc(vol1, vol2, voxel_size=1.0, shell_width=None, mask=None, backend="auto"):
    from spkernels.kernels import fsc

    r = fsc(vol1, vol2, voxel_size=voxel_size, shell_width=shell_width, mask=mask, backend=backend)
    return _np(r.fsc, r.n_voxels, r.sums)


def _checkpoint_fixture(n_images=6, P=10, M=6, seed=0):
    """A valid checkpoint (bytes) with the SPIData and MTIPConfig it belongs to."""
    import tempfile

    from spkernels.mtip import checkpoint as ckpt
    from spkernels.mtip.config import MTIPConfig, Stage
    from spkernels.mtip.data import SPIData

    rng = np.random.default_rng(seed)
    data = SPIData(rng.poisson(4.0, (n_images, P)).astype(np.float64), rng.standard_normal((P, 3)) * 0.01)
    cfg = MTIPConfig(seed=seed, stages=(Stage(30.0, 2, 10),))
    q = rng.standard_normal((n_images, 4))
    state = {"generation": 1, "n_images": n_images, "M": M, "rng_state": np.random.default_rng(seed).bit_generator.state,
             "history": [{"generation": 0}], "orientations": q / np.linalg.norm(q, axis=1, keepdims=True),
             "rho": rng.random((M, M, M)), "ac": rng.random((M, M, M))}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.h5")
        ckpt.save(path, state, cfg, voxel_size=4.0, data=data)
        with open(path, "rb") as fh:
            blob = fh.read()
    return blob, data, cfg


CHECKPOINT_TAG = "spk-fuzz-checkpoint"


def run_checkpoint_load(edit="none", where=0.5, count=1, value=0):
    """Write a valid checkpoint, damage it (`edit`), and load it for its own data and settings."""
    import h5py

    from spkernels.mtip import checkpoint as ckpt

    blob, data, cfg = _checkpoint_fixture()
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"{CHECKPOINT_TAG}-{os.getpid()}.h5")
    b = bytearray(blob)
    if edit == "flip":  # `count` bytes from `where` on, xor `value` (never 0)
        i0 = int(where * (len(b) - count))
        for i in range(i0, i0 + count):
            b[i] ^= (value % 255) + 1
    elif edit == "truncate":
        b = b[: int(where * len(b))]
    elif edit == "garbage":
        b = bytearray(np.random.default_rng(value).bytes(len(b)))
    with open(path, "wb") as fh:
        fh.write(bytes(b))
    if edit.startswith("attr:") or edit.startswith("del:") or edit.startswith("data:"):
        with h5py.File(path, "a") as f:
            kind, name = edit.split(":", 1)
            if kind == "attr":
                f.attrs[name] = value
            elif kind == "del" and name in f:
                del f[name]
            elif kind == "del":
                del f.attrs[name]
            else:
                del f[name]
                f.create_dataset(name, data=value)
    try:
        st = ckpt.load(path, cfg, data=data)
    finally:
        os.unlink(path)
    return _np(st["orientations"], st["rho"], st["ac"])


def run_mtip_config(**settings):
    import json

    from spkernels.mtip.config import MTIPConfig

    cfg = MTIPConfig.from_dict(settings)
    return (np.frombuffer(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode(), np.uint8),)


def run_selftest(mode="ok", a=None):
    """For the suite's own test: a call that succeeds, crashes (SIGSEGV), hangs, raises the wrong
    type or modifies its input `a`."""
    if mode == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "hang":
        time.sleep(3600)
    if mode == "bad-type":
        raise RuntimeError("not a TypeError")
    if mode == "modify":
        a[0] += 1.0
    return (np.arange(3.0),)


RUNNERS = {name[4:]: fn for name, fn in globals().items() if name.startswith("run_")}

# --------------------------------------------------------------------------- baselines


def _pos(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


def _pts(rng, m, dtype=np.float64):
    return tuple(rng.uniform(-np.pi, np.pi, m).astype(dtype) for _ in range(3))


def _cplx(rng, *shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def baseline(func: str, rng, backend: str, single: bool) -> dict:
    """Valid, small, random arguments of `func` (single: float32/complex64 where allowed); every
    argument of the runner is present, defaults included, so a mutation always has a value."""
    import inspect

    args = _baseline(func, rng, backend, single)
    for name, p in inspect.signature(RUNNERS[func]).parameters.items():
        if name not in args and p.default is not inspect.Parameter.empty:
            args[name] = p.default
    return args


def _baseline(func: str, rng, backend: str, single: bool) -> dict:
    real = np.float32 if single else np.float64
    cplx = np.complex64 if single else np.complex128
    R, N, P = int(rng.integers(2, 6)), int(rng.integers(2, 5)), int(rng.integers(3, 9))
    if func in ("distance_argmin", "pairwise_sqdist", "error_bound"):
        prec = "fp64" if backend == "numpy" or not single else "fp32"
        d = dict(models=_pos(rng, R, P).astype(real), data=_pos(rng, N, P).astype(real), weights=_pos(rng, P),
                 precision=prec)
        if func != "error_bound":
            d["backend"] = backend
        if func != "pairwise_sqdist":
            d["metric"] = str(rng.choice(["euclidean", "poisson"]))
        if func == "distance_argmin":
            d["k"] = int(rng.integers(1, R + 1))
        return d
    if func == "segmented_argmin":
        S = int(rng.integers(1, 5))
        counts = rng.integers(1, 5, S)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return dict(values=rng.standard_normal(int(offsets[-1])).astype(real), offsets=offsets, backend=backend)
    if func == "accumulator":
        k = int(rng.integers(1, 4))
        prec = "fp64" if backend == "numpy" or not single else "fp32"
        return dict(n_data=N, k=k, data=_pos(rng, N, P).astype(real), model_batch=_pos(rng, R, P).astype(real),
                    first_index=int(rng.integers(0, 100)), indices=rng.integers(0, 100, (N, 2)),
                    scores=_pos(rng, N, 2).astype(real), metric=str(rng.choice(["euclidean", "poisson"])),
                    weights=_pos(rng, P), precision=prec, backend=backend)
    eps = 1e-5 if single else 1e-9
    M = int(rng.integers(5, 25))
    nm = tuple(int(n) for n in rng.integers(2, 7, 3))
    if func == "nufft3d1":
        x, y, z = _pts(rng, M, real)
        return dict(x=x, y=y, z=z, c=_cplx(rng, M, dtype=cplx), n_modes=nm, eps=eps, backend=backend)
    if func == "nufft3d2":
        x, y, z = _pts(rng, M, real)
        return dict(x=x, y=y, z=z, f=_cplx(rng, *nm, dtype=cplx), eps=eps, backend=backend)
    if func == "plan":
        t = int(rng.integers(1, 3))
        x, y, z = _pts(rng, M, real)
        data = _cplx(rng, M, dtype=cplx) if t == 1 else _cplx(rng, *nm, dtype=cplx)
        return dict(nufft_type=t, n_modes=nm, x=x, y=y, z=z, data=data, eps=eps, dtype=np.dtype(cplx).name,
                    backend=backend)
    if func == "cg":
        n = int(rng.integers(3, 9))
        q = rng.standard_normal((n, n))
        A = q @ q.T + n * np.eye(n)
        return dict(A=wrap("matrix", A.astype(real)), b=rng.standard_normal(n).astype(real), maxiter=3 * n,
                    tol=1e-5 if single else 1e-10, atol=0.0, backend=backend)
    if func == "toeplitz":
        x, y, z = _pts(rng, M)
        n = int(rng.integers(2, 5))
        return dict(x=x, y=y, z=z, n_modes=(n, n, n), u=rng.standard_normal((n, n, n)), weights=_pos(rng, M),
                    values=rng.standard_normal(M), backend=backend)
    if func == "fsc":
        shape = tuple(int(s) for s in rng.integers(4, 9, 3))
        v1 = rng.standard_normal(shape).astype(real)
        return dict(vol1=v1, vol2=(v1 + 0.5 * rng.standard_normal(shape)).astype(real), voxel_size=2.0,
                    mask=rng.uniform(0.1, 1.0, shape).astype(real), backend=backend)
    if func == "checkpoint_load":
        return dict(edit="none", where=float(rng.uniform(0.05, 0.95)), count=int(rng.integers(1, 64)),
                    value=int(rng.integers(0, 2**31)))
    if func == "mtip_config":
        return dict(seed=int(rng.integers(0, 1000)), cg_maxiter=int(rng.integers(1, 50)), eps=1e-4,
                    particle_diameter=float(rng.uniform(50, 300)), keep_current=bool(rng.integers(2)),
                    stages=[dict(resolution=30.0, generations=2, n_references=100)],
                    phasing=dict(n_loops=1, hio=5, beta=0.3), backend=backend)
    raise KeyError(func)


FUNCTIONS = ("distance_argmin", "pairwise_sqdist", "error_bound", "segmented_argmin", "accumulator", "nufft3d1",
             "nufft3d2", "plan", "cg", "toeplitz", "fsc", "mtip_config", "checkpoint_load")

# --------------------------------------------------------------------------- mutations
# A mutation: (label, expect, fn(value, rng) -> new value). `expect` in raise / equiv / any.


def _nan(a, rng):
    a = np.array(a, copy=True)
    a.flat[int(rng.integers(a.size))] = np.nan if rng.random() < 0.5 else np.inf
    return a


def _astype(dt):
    return lambda a, rng: np.asarray(a).astype(dt)


def _big_endian(a, rng):
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder(">"))


def _drop_last(a, rng):  # one element fewer along the last axis
    return np.asarray(a)[..., :-1]


def _add_axis(a, rng):
    return np.asarray(a)[None]


def _empty(a, rng):
    return np.asarray(a)[:0]


def _scalar(a, rng):
    return np.asarray(a).reshape(-1)[0].item()


ARRAY_BAD = [
    ("None", "raise", lambda a, rng: None),
    ("str", "raise", lambda a, rng: "abc"),
    ("dict", "raise", lambda a, rng: {"a": 1}),
    ("object-dtype", "raise", _astype(object)),
    ("string-dtype", "raise", _astype(str)),
    ("ragged-list", "raise", lambda a, rng: [[1.0, 2.0], [3.0]]),
]
ARRAY_EQUIV = [
    ("big-endian", "equiv", _big_endian),
    ("non-contiguous", "equiv", lambda a, rng: wrap("noncontig", np.asarray(a))),
    ("read-only", "equiv", lambda a, rng: wrap("readonly", np.asarray(a))),
    ("fortran", "equiv", lambda a, rng: wrap("fortran", np.asarray(a))),
]
NONFINITE = [("nan-or-inf", "raise", _nan)]
REAL_DTYPE_BAD = [("int64", "raise", _astype(np.int64)), ("bool", "raise", _astype(bool)),
                  ("float16", "raise", _astype(np.float16)), ("complex", "raise", _astype(np.complex128))]
COMPLEX_DTYPE_BAD = [("float64", "raise", _astype(np.float64)), ("int64", "raise", _astype(np.int64)),
                     ("bool", "raise", _astype(bool))]
SHAPE_BAD = [("ndim+1", "raise", _add_axis), ("scalar", "raise", _scalar)]


def _int_bad(low):
    out = [("float", "raise", lambda v, rng: float(v)), ("bool", "raise", lambda v, rng: True),
           ("str", "raise", lambda v, rng: str(v)), ("None", "raise", lambda v, rng: None),
           ("complex", "raise", lambda v, rng: complex(v)), ("huge", "raise", lambda v, rng: 10 ** 30),
           ("huge-10**5000", "raise", lambda v, rng: 10 ** 5000),
           ("2**63", "raise", lambda v, rng: 2 ** 63), ("-2**63", "raise", lambda v, rng: -(2 ** 63)),
           ("below-min", "raise", lambda v, rng: low - 1),
           ("np.int32", "equiv", lambda v, rng: np.int32(v)), ("np.uint64", "equiv", lambda v, rng: np.uint64(v))]
    return out


def _real_bad(low_ok=True):
    return [("nan", "raise", lambda v, rng: float("nan")), ("inf", "raise", lambda v, rng: float("inf")),
            ("str", "raise", lambda v, rng: str(v)), ("bool", "raise", lambda v, rng: True),
            ("None", "raise", lambda v, rng: None), ("complex", "raise", lambda v, rng: complex(v, 1)),
            ("negative", "raise", lambda v, rng: -abs(v) - 1.0), ("np.float64", "equiv", lambda v, rng: np.float64(v))]


STRING_BAD = [("None", "raise", lambda v, rng: None), ("int", "raise", lambda v, rng: 3),
              ("unknown", "raise", lambda v, rng: "no-such-name"), ("bytes", "raise", lambda v, rng: b"numpy"),
              ("list", "raise", lambda v, rng: [v])]
# the NUFFT's `method`: None means "the tuned method, else gather" (no tuned one in the tests)
METHOD_BAD = [("None", "equiv", lambda v, rng: None)] + STRING_BAD[1:]

SIZES_BAD = [
    ("huge-10**30", "raise", lambda v, rng: (10 ** 30, 1, 1)),
    ("huge-10**10+1", "raise", lambda v, rng: (10 ** 10 + 1, 1, 1)),
    ("huge-2**63", "raise", lambda v, rng: (2 ** 63, 2 ** 63, 2 ** 63)),
    ("huge-10**5000", "raise", lambda v, rng: (10 ** 5000, 1, 1)),  # more digits than Python prints
    ("zero", "raise", lambda v, rng: (0, 4, 4)),
    ("negative", "raise", lambda v, rng: (-4, 4, 4)),
    ("float-entry", "raise", lambda v, rng: (4.5, 4, 4)),
    ("bool", "raise", lambda v, rng: True),
    ("str", "raise", lambda v, rng: "444"),
    ("two-entries", "raise", lambda v, rng: (4, 4)),
    ("None", "raise", lambda v, rng: None),
    ("float", "raise", lambda v, rng: 4.0),
    ("list", "equiv", lambda v, rng: list(v)),
    ("np.int64-entries", "equiv", lambda v, rng: tuple(np.int64(n) for n in v)),
]


def _distance_mutations(func):
    arr = ARRAY_BAD + ARRAY_EQUIV + NONFINITE + REAL_DTYPE_BAD + SHAPE_BAD
    m = {
        "models": arr + [("drop-pixel", "raise", _drop_last), ("empty", "raise", _empty),
                         ("huge-values", "any", lambda a, rng: np.asarray(a) * 1e200),
                         ("list", "equiv", lambda a, rng: np.asarray(a).tolist())],
        # huge counts overflow the euclidean score but not the poisson one: "any", and an
        # accepted call must return finite values (FINITE_OUTPUTS)
        "data": arr + [("drop-pixel", "raise", _drop_last), ("empty", "raise", _empty),
                       ("huge-values", "any", lambda a, rng: np.asarray(a) * 1e200)],
        "weights": ARRAY_BAD + ARRAY_EQUIV + NONFINITE + [
            ("drop-pixel", "raise", _drop_last), ("negative", "raise", lambda a, rng: -np.asarray(a)),
            ("complex", "raise", _astype(np.complex128)), ("ndim+1", "raise", _add_axis),
            ("int-mask", "any", lambda a, rng: (np.asarray(a) > 1).astype(np.int64)),
            ("bool-mask", "any", lambda a, rng: np.asarray(a) > 1)],
        "precision": STRING_BAD + [("auto", "any" if func != "error_bound" else "raise", lambda v, rng: "auto")],
    }
    if func != "error_bound":
        m["backend"] = STRING_BAD
    if func != "pairwise_sqdist":
        m["metric"] = STRING_BAD
    if func == "distance_argmin":
        m["k"] = _int_bad(1) + [("above-R", "raise", lambda v, rng: 10 ** 6)]
    return m


def mutations(func: str) -> dict:
    """{argument name: [(label, expect, fn), ...]} for `func`."""
    arr = ARRAY_BAD + ARRAY_EQUIV + NONFINITE
    if func in ("distance_argmin", "pairwise_sqdist", "error_bound"):
        return _distance_mutations(func)
    if func == "segmented_argmin":
        return {
            "values": arr[:-1] + REAL_DTYPE_BAD + SHAPE_BAD + [
                ("nan", "raise", lambda a, rng: np.full_like(np.asarray(a), np.nan)),
                ("inf", "any", lambda a, rng: np.full_like(np.asarray(a), np.inf)),
                ("drop-one", "raise", lambda a, rng: np.asarray(a)[:-1])],
            "offsets": ARRAY_BAD + ARRAY_EQUIV + [
                ("float", "raise", _astype(np.float64)), ("bool", "raise", _astype(bool)),
                ("int32", "equiv", _astype(np.int32)), ("uint64", "equiv", _astype(np.uint64)),
                ("decreasing", "raise", lambda a, rng: np.asarray(a)[::-1].copy()),
                ("one-entry", "raise", lambda a, rng: np.asarray(a)[:1]),
                ("end-too-far", "raise", lambda a, rng: np.append(np.asarray(a)[:-1], 10 ** 12)),
                ("huge-uint64", "raise", lambda a, rng: np.append(np.asarray(a)[:-1], 2 ** 64 - 1).astype(np.uint64)),
                ("ndim+1", "raise", _add_axis)],
            "backend": STRING_BAD,
        }
    if func == "accumulator":
        mat = arr + REAL_DTYPE_BAD + SHAPE_BAD + [("drop-pixel", "raise", _drop_last), ("empty", "raise", _empty)]
        return {
            "n_data": _int_bad(1),
            "k": _int_bad(1),
            "data": mat,
            "model_batch": mat + [("huge-values", "any", lambda a, rng: np.asarray(a) * 1e200)],
            "first_index": _int_bad(0) + [("near-2**63", "raise", lambda v, rng: 2 ** 63 - 1)],
            "indices": ARRAY_BAD + ARRAY_EQUIV + [
                ("float", "raise", _astype(np.float64)), ("negative", "raise", lambda a, rng: -np.asarray(a) - 1),
                ("uint64-max", "raise", lambda a, rng: np.full(np.shape(a), 2 ** 64 - 1, np.uint64)),
                ("drop-row", "raise", lambda a, rng: np.asarray(a)[:-1]),
                ("uint32", "equiv", _astype(np.uint32))],
            "scores": arr + [("drop-col", "raise", _drop_last), ("int", "raise", _astype(np.int64))],
            "metric": STRING_BAD,
            "precision": STRING_BAD,
            "backend": STRING_BAD,
        }
    points = arr + REAL_DTYPE_BAD + SHAPE_BAD + [("drop-one", "raise", _drop_last), ("empty", "raise", _empty),
                                                 ("list", "equiv", lambda a, rng: np.asarray(a).tolist())]
    eps = [("nan", "raise", lambda v, rng: float("nan")), ("str", "raise", lambda v, rng: str(v)),
           ("None", "raise", lambda v, rng: None), ("bool", "raise", lambda v, rng: True),
           ("negative", "raise", lambda v, rng: -1e-6), ("one", "raise", lambda v, rng: 1.0),
           ("np.float64", "equiv", lambda v, rng: np.float64(v))]
    upsamp = [("str", "raise", lambda v, rng: "2"), ("None", "raise", lambda v, rng: None),
              ("negative", "raise", lambda v, rng: -2.0), ("nan", "raise", lambda v, rng: float("nan")),
              ("bool", "raise", lambda v, rng: True)]
    if func == "nufft3d1":
        return {"x": points, "y": points, "z": points,
                "c": arr + COMPLEX_DTYPE_BAD + [("huge-values", "raise", lambda a, rng: np.asarray(a) * 1e306),
                                                ("drop-one", "raise", _drop_last), ("ndim+2", "raise",
                                                                                   lambda a, rng: np.asarray(a)[None, None])],
                "n_modes": SIZES_BAD, "eps": eps, "backend": STRING_BAD, "method": METHOD_BAD, "upsampfac": upsamp}
    if func == "nufft3d2":
        return {"x": points, "y": points, "z": points,
                "f": arr + COMPLEX_DTYPE_BAD + [("huge-values", "raise", lambda a, rng: np.asarray(a) * 1e306),
                                                ("drop-mode", "any", _drop_last), ("ndim-1", "raise",
                                                                               lambda a, rng: np.asarray(a)[0]),
                                                 ("empty", "raise", _empty)],
                "eps": eps, "backend": STRING_BAD, "upsampfac": upsamp}
    if func == "plan":
        return {"nufft_type": [("3", "raise", lambda v, rng: 3), ("float", "raise", lambda v, rng: float(v)),
                               ("bool", "raise", lambda v, rng: True), ("str", "raise", lambda v, rng: str(v)),
                               ("None", "raise", lambda v, rng: None), ("np.int8", "equiv", lambda v, rng: np.int8(v))],
                "n_modes": SIZES_BAD, "x": points, "y": points, "z": points,
                "data": arr + COMPLEX_DTYPE_BAD + [("drop-one", "raise", _drop_last)],
                "eps": eps,
                "dtype": [("None", "raise", lambda v, rng: None), ("int", "raise", lambda v, rng: "int32"),
                          ("nonsense", "raise", lambda v, rng: "no-such-dtype"), ("number", "raise", lambda v, rng: 3),
                          ("np.dtype", "equiv", lambda v, rng: np.dtype(v))],
                "n_trans": _int_bad(1), "backend": STRING_BAD, "method": METHOD_BAD, "upsampfac": upsamp}
    if func == "cg":
        return {
            "A": [("None", "raise", lambda v, rng: None), ("str", "raise", lambda v, rng: "A"),
                  ("int", "raise", lambda v, rng: 3)],
            # (a `b` that does not match `A` is the operator's error to raise, not the solver's)
            "b": ARRAY_BAD + ARRAY_EQUIV + NONFINITE + [("bool", "raise", _astype(bool)), ("empty", "raise", _empty),
                                                        ("list", "equiv", lambda a, rng: np.asarray(a).tolist()),
                                                        ("huge-values", "raise", lambda a, rng: np.asarray(a) * 1e300)],
            "x0": [("None-ok", "any", lambda v, rng: None), ("str", "raise", lambda v, rng: "abc"),
                   ("object", "raise", lambda v, rng: np.array([object()] * 3)),
                   ("wrong-shape", "raise", lambda v, rng: np.ones(100)),
                   ("nan", "raise", lambda v, rng: np.full(100, np.nan))],
            "tol": _real_bad(), "atol": _real_bad(),
            "maxiter": _int_bad(0) + [("10**13", "raise", lambda v, rng: 10 ** 13)],
            "check_every": [("zero", "raise", lambda v, rng: 0), ("float", "raise", lambda v, rng: 2.0),
                            ("bool", "raise", lambda v, rng: True), ("str", "raise", lambda v, rng: "8")],
            "backend": STRING_BAD,
        }
    if func == "toeplitz":
        return {"x": points, "y": points, "z": points,
                "n_modes": SIZES_BAD[:-2],  # the u of the baseline fixes the size: no equivalents here
                "u": ARRAY_BAD + ARRAY_EQUIV + [("drop-one", "raise", _drop_last), ("bool", "raise", _astype(bool)),
                                                ("flat", "any", lambda a, rng: np.asarray(a).reshape(-1))],
                "weights": ARRAY_BAD + ARRAY_EQUIV + NONFINITE + [
                    ("complex", "raise", _astype(np.complex128)), ("drop-one", "raise", _drop_last),
                    ("ndim+1", "raise", _add_axis), ("bool", "raise", _astype(bool))],
                "values": ARRAY_BAD + ARRAY_EQUIV + NONFINITE + [
                    ("drop-one", "raise", _drop_last), ("ndim+1", "raise", _add_axis)],
                "eps": eps, "backend": STRING_BAD}
    if func == "fsc":
        vol = arr + REAL_DTYPE_BAD + [("drop-one", "raise", _drop_last), ("ndim+1", "raise", _add_axis),
                                      ("2-D", "raise", lambda a, rng: np.asarray(a)[0]),
                                      ("one-voxel-axis", "raise", lambda a, rng: np.asarray(a)[:1])]
        return {"vol1": vol, "vol2": vol,
                "voxel_size": _real_bad() + [("zero", "raise", lambda v, rng: 0.0),
                                             ("denormal", "raise", lambda v, rng: 1e-320)],
                "shell_width": [("tiny", "raise", lambda v, rng: 1e-300), ("zero", "raise", lambda v, rng: 0.0),
                                ("str", "raise", lambda v, rng: "0.1"), ("nan", "raise", lambda v, rng: float("nan"))],
                "mask": ARRAY_BAD + ARRAY_EQUIV + NONFINITE + [("drop-one", "raise", _drop_last),
                                                               ("int", "raise", _astype(np.int64))],
                "backend": STRING_BAD}
    if func == "checkpoint_load":
        attr = lambda name, v: lambda old, rng: (f"attr:{name}", v)  # noqa: E731
        return {
            # (the edit argument carries the damage; `where`/`count`/`value` come from the baseline,
            # and a pair (edit, value) replaces both)
            # a flipped byte may land where nothing reads it; if the file loads, it must load as written
            "edit": [("flip", "same", lambda v, rng: "flip"),
                     ("truncate", "raise", lambda v, rng: "truncate"),
                     ("garbage", "raise", lambda v, rng: "garbage"),
                     ("generation-999", "raise", attr("generation", 999)),
                     ("generation-str", "raise", attr("generation", "1")),
                     ("generation-float", "raise", attr("generation", 1.0)),
                     ("n_images", "raise", attr("n_images", 7)),
                     ("M", "raise", attr("M", 5)),
                     ("voxel_size-nan", "raise", attr("voxel_size", float("nan"))),
                     ("format", "raise", attr("format", "other")),
                     ("history-json", "raise", attr("history", "[{")),
                     ("config-other", "raise", attr("config", '{"seed": 5}')),
                     ("data-fingerprint", "raise", attr("data_sha256", "0" * 64)),
                     ("rng-state", "raise", attr("rng_state", "[]")),
                     ("no-rho", "raise", lambda v, rng: ("del:rho", 0)),
                     ("no-config", "raise", lambda v, rng: ("del:config", 0)),
                     ("rho-shape", "raise", lambda v, rng: ("data:rho", np.ones((5, 5, 5)))),
                     ("ac-nan", "raise", lambda v, rng: ("data:ac", np.full((6, 6, 6), np.nan))),
                     ("orientations-str", "raise", lambda v, rng: ("data:orientations", np.array([b"ab"] * 6))),
                     ("none", "equiv", lambda v, rng: "none")],
        }
    if func == "mtip_config":
        stage = lambda **kw: lambda v, rng: [dict(dict(resolution=30.0, generations=2, n_references=100), **kw)]  # noqa: E731
        return {
            # any size of seed is a seed (NumPy takes big integers)
            "seed": [m for m in _int_bad(0) if m[0] not in ("huge", "2**63", "huge-10**5000")],
            "cg_maxiter": _int_bad(1),
            "eps": eps + [("above-one", "raise", lambda v, rng: 2.0)],
            "particle_diameter": _real_bad() + [("None-ok", "any", lambda v, rng: None)],
            "keep_current": [("int", "raise", lambda v, rng: 1), ("str", "raise", lambda v, rng: "true"),
                             ("None", "raise", lambda v, rng: None)],
            "stages": [("float-generations", "raise", stage(generations=1.5)),
                       ("str-generations", "raise", stage(generations="2")),
                       ("zero-generations", "raise", stage(generations=0)),
                       ("negative-references", "raise", stage(n_references=-3)),
                       ("bool-references", "raise", stage(n_references=True)),
                       ("nan-resolution", "raise", stage(resolution=float("nan"))),
                       ("unknown-key", "raise", stage(foo=1)),
                       ("missing-key", "raise", lambda v, rng: [dict(resolution=30.0, generations=2)]),
                       ("str", "raise", lambda v, rng: "30,2,100"), ("None", "raise", lambda v, rng: None),
                       ("not-a-table", "raise", lambda v, rng: [3]), ("empty", "any", lambda v, rng: [])],
            "phasing": [("unknown-key", "raise", lambda v, rng: dict(v, hoi=3)),
                        ("str-value", "raise", lambda v, rng: dict(v, beta="0.3")),
                        ("float-count", "raise", lambda v, rng: dict(v, hio=2.5)),
                        ("negative", "raise", lambda v, rng: dict(v, n_loops=-1)),
                        ("not-a-table", "raise", lambda v, rng: [1, 2])],
            "backend": [("None", "raise", lambda v, rng: None), ("int", "raise", lambda v, rng: 3)],
        }
    raise KeyError(func)


# --------------------------------------------------------------------------- checking

ALLOWED = ("TypeError", "ValueError", "BackendUnavailableError")
BAD_OUTCOMES = ("crash", "hang", "slow-error", "wrong-type", "unclear-message", "silent-acceptance", "modified",
                "not-equivalent", "equivalent-refused", "silent-overflow")


def names_argument(message: str, arg: str) -> bool:
    """True when `message` names `arg` in backticks (alone, or in a group such as `x`, `y`)."""
    for token in re.findall(r"`([^`]+)`", message):
        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(arg)}(?![A-Za-z0-9_])", token):
            return True
    return False


#: functions whose accepted results must be finite (Inf/NaN from finite inputs is an overflow
#: that must raise; fsc's curve is NaN for empty shells and segmented_argmin's min is +inf for
#: an empty segment or all-inf values, both documented)
FINITE_OUTPUTS = set(FUNCTIONS) - {"fsc", "segmented_argmin"}

#: arguments for which None is a valid value (a None mutation of them may be accepted)
OPTIONAL = {"weights", "mask", "x0", "values", "shell_width", "check_every", "particle_diameter"}

#: other names a message may use for an argument (the Plan's data is `c` or `f` by type)
ALIASES = {("plan", "data"): ("data", "c", "f")}


def classify(reply: dict, arg: str, expect: str, func: str = "") -> str:
    """The outcome of one call: 'refused' (a clear error), 'equivalent' (an equivalent input gave
    bitwise the baseline's result), 'accepted' (an edge case that may pass), or one of
    :data:`BAD_OUTCOMES`."""
    status = reply["status"]
    if status in ("crash", "hang"):
        return status
    if reply.get("modified"):
        return "modified"
    if status == "error":
        if reply["type"] not in ALLOWED:
            return "wrong-type"
        if reply["seconds"] > ERROR_SECONDS:
            return "slow-error"
        names = ALIASES.get((func, arg), (arg,))
        if func == "checkpoint_load":  # a file error names the file
            if CHECKPOINT_TAG not in reply["message"]:
                return "unclear-message"
        elif reply["type"] != "BackendUnavailableError" and not any(names_argument(reply["message"], n) for n in names):
            return "unclear-message"
        if expect == "equiv" and reply["type"] != "BackendUnavailableError":
            return "equivalent-refused"
        return "refused"
    if expect == "raise":
        return "silent-acceptance"
    if expect == "same" and reply.get("equal") is False:
        return "not-equivalent"  # a damaged file loaded with other contents
    if expect == "equiv" and reply.get("equal") is False:
        return "not-equivalent"
    if expect == "equiv":
        return "equivalent"  # accepted, and bitwise the baseline's result
    if func in FINITE_OUTPUTS and reply.get("finite") is False:
        return "silent-overflow"
    return "accepted"


#: an error must come within this many seconds (issue 12: "a hang (> 5 s for an error)")
ERROR_SECONDS = 5.0
#: a call that succeeds may need longer the first time (JIT); past this it is a hang
CALL_SECONDS = float(os.environ.get("SPK_FUZZ_CALL_SECONDS", "60"))

# --------------------------------------------------------------------------- worker


def _fingerprint(v):
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "O":
            return ("O", v.shape, [id(o) for o in v.flat])
        return (v.dtype.str, v.shape, v.tobytes())
    return None


def _equal(a, b) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            return False
    return True


def _call(func, args):
    t0 = time.perf_counter()
    try:
        out = RUNNERS[func](**args)
        return {"status": "ok", "seconds": time.perf_counter() - t0}, out
    except Exception as exc:  # every exception is recorded: the parent decides what is allowed
        tb = traceback.format_exc(limit=-3)
        from spkernels import BackendUnavailableError

        # the family the contract allows (subclasses count: CheckpointError is a ValueError)
        family = next((c.__name__ for c in (BackendUnavailableError, TypeError, ValueError) if isinstance(exc, c)),
                      type(exc).__name__)
        return {"status": "error", "type": family, "class": type(exc).__name__, "message": str(exc)[:2000],
                "traceback": tb,
                "seconds": time.perf_counter() - t0}, None


def _serve(inp, out) -> None:
    import warnings

    warnings.simplefilter("ignore")
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return
        (n,) = struct.unpack("<Q", head)
        req = pickle.loads(inp.read(n))
        args = {k: _resolve(v) for k, v in req["args"].items()}
        before = {k: _fingerprint(v) for k, v in args.items()}
        reply, result = _call(req["func"], args)
        if result is not None:
            reply["finite"] = all(bool(np.isfinite(r).all()) for r in result if r.dtype.kind in "fc")
        reply["modified"] = [k for k, v in args.items() if before[k] is not None and _fingerprint(v) != before[k]]
        if req.get("want_result") and result is not None:
            reply["result"] = result
        if req.get("compare") is not None and reply["status"] == "ok":
            base = {k: _resolve(v) for k, v in req["compare"].items()}
            r0, ref = _call(req["func"], base)
            reply["equal"] = r0["status"] == "ok" and _equal(ref, result)
        data = pickle.dumps(reply)
        out.write(struct.pack("<Q", len(data)) + data)
        out.flush()


class Worker:
    """A worker subprocess running fuzz calls one at a time, each with a time limit.

    A call that kills the worker is a ``crash`` (the signal is reported), one that runs past its
    limit a ``hang`` (the worker is killed); either way the next call gets a fresh worker.
    """

    def __init__(self, env=None):
        from _subprocess import env as _subprocess_env

        self.env = _subprocess_env(env)  # the worker imports the spkernels under test
        # One thread each: fuzz calls are tiny, and idle spinning threads of a parallel runtime
        # only slow a shared machine down.
        for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            self.env.setdefault(var, "1")
        self.proc = None
        self.restarts = 0

    def _start(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env)

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def _kill(self):
        try:
            self.proc.send_signal(signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        self.proc = None
        self.restarts += 1

    def _read(self, n, deadline):
        buf = b""
        fd = self.proc.stdout.fileno()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return b""
            buf += chunk
        return buf

    def call(self, func, args, *, compare=None, limit=None, want_result=False):
        """Run one call; returns the reply dict (``status`` ok / error / crash / hang; with
        `want_result`, ``result``: the tuple of NumPy arrays the call returned)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        limit = CALL_SECONDS if limit is None else limit
        data = pickle.dumps({"func": func, "args": args, "compare": compare, "want_result": want_result})
        t0 = time.monotonic()
        try:
            self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        deadline = t0 + limit * (2 if compare is not None else 1)
        head = self._read(8, deadline)
        if head is None:
            self._kill()
            return {"status": "hang", "seconds": time.monotonic() - t0}
        if len(head) < 8:
            rc = self.proc.wait()
            self.proc = None
            self.restarts += 1
            return {"status": "crash", "signal": -rc if rc < 0 else None, "returncode": rc,
                    "seconds": time.monotonic() - t0}
        (n,) = struct.unpack("<Q", head)
        body = self._read(n, deadline + 30)
        if not body or len(body) < n:
            self._kill()
            return {"status": "crash", "seconds": time.monotonic() - t0}
        return pickle.loads(body)


if __name__ == "__main__" and "--worker" in sys.argv:
    _serve(sys.stdin.buffer, sys.stdout.buffer)
