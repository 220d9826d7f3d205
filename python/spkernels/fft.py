"""FFT sizes the FFT libraries handle fast: a rule, and a measured choice cached per machine.

An FFT's cost depends on the prime factors of its length far more than on the length: SciPy's
pocketfft has hand-written passes for the radices 2, 3, 4, 5, 7 and 11 (real transforms 2, 3, 4
and 5), cuFFT optimises 2, 3, 5 and 7; any other factor falls back to a generic pass or
Bluestein's algorithm. A length 138 = 2·3·23 is therefore slower than 140 = 2²·5·7 although it
is shorter. Wherever the package is free to pad a transform (a circulant embedding, an
oversampled grid, a zero-padded image), it asks here for the size.

- :func:`good_size` is the rule: the smallest ``m >= n`` whose prime factors are all ``<=
  smooth`` (7 for both libraries by default: the radices both handle), optionally even. It
  enumerates the smooth numbers below ``2n``, so any size answers in a few steps.
- :func:`advise` measures: for each axis a few candidate sizes ``>= n`` (the size itself, the
  rule's and the next 11-smooth ones within ``max_growth``), timed as a forward + inverse pair
  of the whole N-D transform with the workers the package uses
  (:func:`spkernels._arrays.fft_module`: scipy.fft on every core on the host, ``cupy.fft`` on
  a GPU), in interleaved rounds of alternating order so load drifts hit every candidate alike,
  each candidate's shortest time counting. The fastest shape wins unless the rule's is within
  ``margin`` of it, and only if a second measurement of the two confirms it (otherwise the rule is
  kept: a choice should not flip with timing noise). The
  choice is stored with :mod:`spkernels.tuning.cache` (family ``"fft"``, backend ``"cpu"`` or
  ``"cuda"``, precision the dtype's name, size class the requested shape, e.g.
  ``"137x137x137"``), so it is measured once per machine and build; later calls are a
  dictionary access. ``SPK_TUNING=off`` returns the rule without measuring.

Callers must make their result independent of the padded size beyond rounding (a padded size
is a free parameter of the algorithm, never of the answer); each use in the package says how.
"""

from __future__ import annotations

import logging
import math
import numbers
import time

import numpy as np

from .tuning import cache as _cache

__all__ = ["good_size", "advise", "is_smooth", "LIBRARIES", "DEFAULT_SMOOTH", "MAX_SMOOTH"]

log = logging.getLogger("spkernels.fft")

LIBRARIES = ("cpu", "cuda")
"""FFT libraries: ``"cpu"`` (scipy.fft, pocketfft) and ``"cuda"`` (cuFFT through CuPy)."""

DEFAULT_SMOOTH = {"cpu": 7, "cuda": 7}
"""Largest prime factor of the rule's sizes per library (both have fast passes up to 7)."""

_CANDIDATE_SMOOTH = 11  # advise also tries 11-smooth sizes (pocketfft's complex radices)
_BACKEND_LIBRARY = {"numpy": "cpu", "cpu": "cpu", "numba-cpu": "cpu", "cuda": "cuda", "numba-cuda": "cuda"}
_MEMO: dict = {}  # choices made in this process when the cache file could not be written


def _check_int(name, v, low=1):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {type(v).__name__}")
    v = int(v)
    if v < low:
        raise ValueError(f"`{name}` must be >= {low}, got {v}")
    return v


MAX_SMOOTH = 13
"""Largest `smooth` accepted: no FFT library has faster passes for larger primes, and the number
of smooth sizes to enumerate grows quickly with it."""


def _check_smooth(v):
    v = _check_int("smooth", v, low=2)
    if v > MAX_SMOOTH:
        raise ValueError(f"`smooth` must be at most {MAX_SMOOTH} (the largest radix FFT libraries have), got {v}")
    return v


def _check_bool(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {type(v).__name__}")
    return bool(v)


def _primes_upto(k: int) -> tuple:
    return tuple(p for p in range(2, k + 1) if all(p % q for q in range(2, int(p ** 0.5) + 1)))


def _library(backend) -> str:
    """The FFT library a backend name stands for (``auto``: cuFFT when CuPy sees a GPU)."""
    if not isinstance(backend, str):
        raise TypeError(f"`backend` must be a string, got {type(backend).__name__}")
    if backend == "auto":
        return "cuda" if _gpu_usable() else "cpu"
    lib = _BACKEND_LIBRARY.get(backend)
    if lib is None:
        raise ValueError(f"`backend` must be 'auto', 'cpu' or 'cuda' (or a spkernels backend name), got {backend!r}")
    return lib


def _gpu_usable() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device
        return False


def is_smooth(n: int, smooth: int) -> bool:
    """True when every prime factor of `n` (an integer >= 1) is at most `smooth` (2 to
    :data:`MAX_SMOOTH`)."""
    n = _check_int("n", n)
    smooth = _check_smooth(smooth)
    for p in _primes_upto(min(smooth, n)):
        while n % p == 0:
            n //= p
    return n == 1


def _smallest_smooth(n: int, primes: tuple, even: bool) -> int:
    """Smallest m >= n with prime factors in `primes` (2 among them), even if `even`.

    Walks every product of the odd primes below 2n (the powers of 2 then lift each to n): the
    number of such products grows like log(n)^k, so even n = 10**30 answers at once.
    """
    odd = [p for p in primes if p != 2]
    limit = 2 * n
    best = None
    stack = [(1, 0)]
    while stack:
        prod, i = stack.pop()
        m = 2 * prod if even else prod
        while m < n:
            m *= 2
        if best is None or m < best:
            best = m
        for j in range(i, len(odd)):
            nxt = prod * odd[j]
            if nxt < limit:
                stack.append((nxt, j))
    return best


#: the largest length the rule answers (no FFT is longer; the search grows like log(n)**3)
MAX_LENGTH = 2 ** 63


def _rule(n: int, smooth: int, even: bool) -> int:
    if n > MAX_LENGTH:
        from ._arrays import fmt_int

        raise ValueError(f"an FFT length must be at most 2**63, got {fmt_int(n)}")
    return _smallest_smooth(n, _primes_upto(smooth), even)


def good_size(n, *, smooth=None, backend="auto", measure=False, even=False) -> int:
    """The smallest FFT length ``>= n`` the FFT library handles fast.

    Parameters
    ----------
    n : int
        Required length (>= 1).
    smooth : int, optional
        Largest prime factor allowed (2 to :data:`MAX_SMOOTH`); default :data:`DEFAULT_SMOOTH`
        of the library.
    backend : str
        ``"cpu"`` (scipy.fft), ``"cuda"`` (cuFFT), a spkernels backend name (mapped to the
        library it runs its FFTs with) or ``"auto"`` (cuFFT when CuPy sees a GPU).
    measure : bool
        Time candidates on this machine instead of applying the rule (:func:`advise` of a 1-D
        complex transform; cached).
    even : bool
        Only even lengths (e.g. a grid centred at ``n // 2`` with a half spectrum).

    Returns
    -------
    int
        A length ``m >= n`` (``m == n`` when `n` itself qualifies and nothing is measured).

    Examples
    --------
    >>> good_size(137), good_size(138), good_size(277, smooth=5, even=True)
    (140, 140, 288)
    """
    n = _check_int("n", n)
    even = _check_bool("even", even)
    measure = _check_bool("measure", measure)
    lib = _library(backend)
    smooth = DEFAULT_SMOOTH[lib] if smooth is None else _check_smooth(smooth)
    if measure:
        return advise((n,), backend=lib, measure=True, smooth=smooth, even=even)[0]
    return _rule(n, smooth, even)


def _check_shape(shape) -> tuple:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"`shape` must be an integer or a sequence of integers, got {type(shape).__name__}")
    shape = tuple(shape)
    if not shape:
        raise ValueError("`shape` must have at least one axis")
    return tuple(_check_int(f"shape[{i}]", v) for i, v in enumerate(shape))


def _check_dtype(dtype, real):
    if dtype is None:
        return np.dtype(np.float64 if real else np.complex128)
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"`dtype` must be a NumPy dtype, got {dtype!r}") from exc
    allowed = ("float32", "float64") if real else ("complex64", "complex128")
    if dt.name not in allowed:
        kind = "real" if real else "complex"
        raise ValueError(f"`dtype` of a {kind} transform must be one of {allowed}, got {dt.name}")
    return dt


def _size_class(shape, even) -> str:
    return "x".join(str(n) for n in shape) + ("-even" if even else "")


def _candidates(n, rule, count, max_growth, even):
    """Sizes tried for one axis: n itself (when it may be even), the rule's, the next 11-smooth."""
    top = max(rule, int(math.floor(n * max_growth)))
    out = [rule]
    if n != rule and (n % 2 == 0 or not even):
        out.append(n)
    m = n
    while len(out) < count:
        m = _rule(m, _CANDIDATE_SMOOTH, even)
        if m > top:
            break
        if m not in out:
            out.append(m)
        m += 1
    return sorted(out)


def _timer(lib, real, dtype):
    """A function timing one forward + inverse transform of a given shape (seconds)."""
    from ._arrays import fft_module

    if lib == "cuda":
        import cupy as xp

        def sync():
            xp.cuda.Device().synchronize()
    else:
        xp = np

        def sync():
            pass
    fft = fft_module(xp)
    rng = np.random.default_rng(0)
    arrays = {}

    def run(shape):
        a = arrays.get(shape)
        if a is None:
            host = rng.standard_normal(shape)
            if not real:
                host = host + 1j * rng.standard_normal(shape)
            a = arrays[shape] = xp.asarray(host.astype(dtype))
        sync()
        t0 = time.perf_counter()
        if real:
            fft.irfftn(fft.rfftn(a), s=shape)
        else:
            fft.ifftn(fft.fftn(a))
        sync()
        return time.perf_counter() - t0

    return run


def _measure(shapes, run, repeats, budget):
    """Shortest time of each shape over interleaved rounds (at least one): on a shared machine
    other work only ever adds time, so the minimum is the steadiest estimate of a size's cost."""
    times = {s: [] for s in shapes}
    for s in shapes:  # warm-up: plans, first touch
        run(s)
    t_start = time.perf_counter()
    rounds = 0
    # `repeats` rounds within `budget`; small transforms (noisy) get up to 20x more rounds
    # while they stay within a tenth of it.
    while True:
        for s in (shapes if rounds % 2 == 0 else shapes[::-1]):  # alternate: no place is favoured
            times[s].append(run(s))
        rounds += 1
        elapsed = time.perf_counter() - t_start
        if elapsed > budget or rounds >= 20 * repeats or (rounds >= repeats and elapsed > 0.1 * budget):
            break
    return {s: float(min(v)) for s, v in times.items()}


def advise(shape, *, real=False, backend="auto", measure=True, dtype=None, smooth=None, even=False,
           candidates=5, max_growth=1.25, margin=0.05, repeats=5, budget=3.0):
    """The fastest FFT shape ``>=`` `shape` per axis on this machine, measured once and cached.

    Parameters
    ----------
    shape : int or sequence of int
        Required length of each axis (>= 1).
    real : bool
        Time real-to-complex transforms (``rfftn``/``irfftn``) instead of complex ones.
    backend : str
        ``"cpu"``, ``"cuda"``, a spkernels backend name or ``"auto"`` (see :func:`good_size`);
        ``"cuda"`` measures ``cupy.fft`` (without CuPy or a visible GPU: the rule).
    measure : bool
        False (or ``SPK_TUNING=off``): the rule (:func:`good_size` per axis), never a measurement.
    dtype : dtype, optional
        float32/float64 (real) or complex64/complex128; default the float64 one. Its name is
        the cache entry's precision.
    smooth, even : int, bool
        The rule's largest prime and evenness (see :func:`good_size`); candidates keep `even`.
    candidates : int
        Sizes tried per axis (>= 1): the axis's own length (unless `even` excludes it), the
        rule's and the next 11-smooth ones up to ``max_growth`` times the length.
    max_growth : float
        Largest candidate as a multiple of the required length (>= 1).
    margin : float
        The rule's shape is kept unless another is faster by more than this fraction, in the
        search and again in a second measurement of the two.
    repeats, budget : int, float
        Timed rounds (each times every candidate once; transforms so small that `repeats`
        rounds take under a tenth of `budget` get up to 20x more) and the seconds after which
        no further round starts.

    Returns
    -------
    tuple of int
        One size per axis, each ``>=`` the required one.

    Notes
    -----
    Equal axes (a cube) are tried together; otherwise each axis is chosen in turn with the
    others at their current choice. Candidates that would not fit in memory are skipped. A cache
    entry whose shape does not fit the request is ignored; a cache file that cannot be written
    costs a log line and the choice is kept for this process only.
    """
    shape = _check_shape(shape)
    real = _check_bool("real", real)
    measure = _check_bool("measure", measure)
    even = _check_bool("even", even)
    dt = _check_dtype(dtype, real)
    lib = _library(backend)
    smooth = DEFAULT_SMOOTH[lib] if smooth is None else _check_smooth(smooth)
    candidates = _check_int("candidates", candidates)
    repeats = _check_int("repeats", repeats)
    for name, v, low in (("max_growth", max_growth, 1.0), ("margin", margin, 0.0), ("budget", budget, 0.0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < low:
            raise ValueError(f"`{name}` must be a finite number >= {low:g}, got {v!r}")
    rule = tuple(_rule(n, smooth, even) for n in shape)
    if not measure or not _cache.enabled():
        return rule
    if lib == "cuda" and not _gpu_usable():
        log.debug("fft: no CuPy device to measure cuFFT on; the rule's shape %s", rule)
        return rule
    size_class = _size_class(shape, even)
    memo_key = (str(_cache.cache_path()), lib, dt.name, size_class)
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    hit = _cached(lib, dt.name, size_class, shape, even)
    if hit is not None:
        return hit
    try:
        choice, info = _search(shape, rule, lib, real, dt, even, candidates, float(max_growth), float(margin),
                               repeats, float(budget))
    except Exception as exc:  # advice may make a transform faster, never make a caller fail
        log.warning("spkernels: measuring FFT sizes for %s failed (%s); using %s", size_class, exc, rule)
        return rule
    try:
        _cache.store("fft", lib, dt.name, size_class, {"shape": list(choice)}, **info)
    except OSError as exc:
        log.warning("spkernels: could not store the FFT size choice in %s (%s); kept for this process",
                    _cache.cache_path(), exc)
        _MEMO[memo_key] = choice
    return choice


def _cached(lib, precision, size_class, shape, even):
    cfg = _cache.lookup("fft", lib, precision, size_class)
    if cfg is None:
        return None
    got = cfg.get("shape")
    ok = (isinstance(got, list) and len(got) == len(shape)
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= n and (v % 2 == 0 or not even)
                  for v, n in zip(got, shape)))
    if not ok:
        log.warning("spkernels: ignoring a cached FFT size %r for shape %s", got, size_class)
        return None
    return tuple(got)


def _search(shape, rule, lib, real, dt, even, count, max_growth, margin, repeats, budget):
    from ._arrays import host_available_bytes

    run = _timer(lib, real, dt)
    per_axis = [_candidates(n, r, count, max_growth, even) for n, r in zip(shape, rule)]
    avail = host_available_bytes() if lib == "cpu" else _device_free()
    itemsize = np.dtype(dt).itemsize * (2 if real else 1)  # the complex spectrum dominates

    def fits(s):
        return 3 * math.prod(s) * itemsize < 0.5 * avail

    if not fits(rule):
        return rule, {"reason": "the rule's shape is too large to measure"}
    tried: dict = {}
    if len(set(shape)) == 1:
        cube = [tuple([c] * len(shape)) for c in per_axis[0]]
        tried.update(_measure([s for s in cube if fits(s)], run, repeats, budget))
    else:
        current = list(rule)
        for ax in range(len(shape)):
            shapes = []
            for c in per_axis[ax]:
                s = tuple(current[:ax] + [c] + current[ax + 1:])
                if fits(s):
                    shapes.append(s)
            t = _measure(shapes, run, repeats, budget)
            tried.update(t)
            current[ax] = min(t, key=t.get)[ax]
    best = min(tried, key=tried.get)
    t_rule = tried.get(rule)
    if t_rule is not None and t_rule <= (1.0 + margin) * tried[best]:
        best = rule
    confirmed = None
    if t_rule is not None and best != rule:
        # Confirm in a second, independent measurement of the two: among several near-equal
        # candidates, a timing blip alone made the choice flip between runs (29 -> 30 or 32).
        again = _measure([rule, best], run, repeats, budget)
        confirmed = again[rule] > (1.0 + margin) * again[best]
        if not confirmed:
            best = rule
    log.info("fft: %s %s on %s -> %s (%.3g s; rule %s %.3g s)", _size_class(shape, even), dt.name, lib, best,
             tried[best], rule, t_rule if t_rule is not None else float("nan"))
    info = {"time_s": tried[best], "default_time_s": t_rule, "requested": list(shape), "rule": list(rule),
            "speedup": (t_rule / tried[best]) if t_rule else None, "confirmed": confirmed,
            "candidates": {_size_class(s, False): t for s, t in sorted(tried.items())}}
    return best, info


def _device_free() -> int:
    try:
        import cupy

        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(free + cupy.get_default_memory_pool().free_bytes())
    except Exception:
        return 0
