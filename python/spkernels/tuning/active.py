"""What the kernels call at run time: the configuration to use for one call.

:func:`current` returns, in order of precedence, the configuration a tuner is trying right now
(:func:`using`, a context variable: the searcher's and the online tuner's way of running a kernel
with a candidate), else the stored one for this machine and build (:func:`spkernels.tuning.cache.lookup`:
a dictionary access after the first call of a process), else ``{}`` (the kernel's defaults).
``SPK_TUNING=off`` empties the second source, so kernels run their defaults unless a tuner is
running them explicitly.

Kernels read each key with :func:`value`, which falls back to the default (with one log line)
when a stored value has the wrong type or range: a stale or hand-edited cache never makes a
kernel fail.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging

from . import cache

__all__ = ["current", "using", "value", "pow2", "size_tag"]

_log = logging.getLogger("spkernels.tuning")
_override: contextvars.ContextVar = contextvars.ContextVar("spkernels_tuning_override", default=None)
_warned: set = set()


def current(family: str, backend: str, precision: str, size_class: str) -> dict:
    """The configuration for one call of `family` on `backend` (``{}``: run the defaults)."""
    ov = _override.get()
    if ov is not None and family in ov:
        return dict(ov[family])
    try:
        cfg = cache.lookup(family, backend, str(precision), size_class)
    except Exception as exc:  # noqa: BLE001 (tuning can make a kernel faster, never make it fail)
        key = ("lookup", family, type(exc).__name__)
        if key not in _warned:
            _warned.add(key)
            _log.warning("spkernels: tuning cache lookup failed for %s (%s); using defaults", family, exc)
        return {}
    return cfg or {}


@contextlib.contextmanager
def using(family: str, config: dict):
    """Run the kernels of `family` with `config` inside the ``with`` block (whatever is stored)."""
    if not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict, got {type(config).__name__}")
    ov = dict(_override.get() or {})
    ov[family] = dict(config)
    token = _override.set(ov)
    try:
        yield
    finally:
        _override.reset(token)


def value(config: dict, key: str, default, check=None, family: str = ""):
    """``config[key]`` when present and ``check(value)`` holds, else `default` (logged once per key)."""
    if key not in config:
        return default
    v = config[key]
    try:
        ok = True if check is None else bool(check(v))
    except Exception:  # noqa: BLE001
        ok = False
    if not ok:
        tag = (family, key, repr(v))
        if tag not in _warned:
            _warned.add(tag)
            _log.warning("spkernels: ignoring tuned %s %s=%r (invalid); using %r", family, key, v, default)
        return default
    return v


def pow2(n: int) -> int:
    """The smallest power of two >= n (>= 1): the problem-size classes' rounding."""
    n = max(1, int(n))
    return 1 << (n - 1).bit_length()


def size_tag(**dims) -> str:
    """A size class ``"a64-b1024"`` from named dimensions, each rounded up to a power of two."""
    return "-".join(f"{k}{pow2(v)}" for k, v in dims.items())


def is_int(v, low=1, high=None) -> bool:
    """True for a plain int (not bool) in [low, high]."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)
