"""Dynamic ("online") tuning inside a long run: the first calls of a loop try candidates, the
best is kept for the rest of the run and stored.

A long run calls one kernel many times on same-sized inputs (e.g. the insertion of one batch of
particles after another into the same accumulators). :class:`OnlineTuner` wraps each call:

- the first call runs the default configuration alone (it pays the warm-up: JIT, first touch);
- each of the next calls is a *trial*: the default configuration runs on the real accumulators
  (so the run's result is exactly the default's) and one candidate runs on a copy of them; the
  candidate's output must match the default's (bitwise where the kernel is deterministic by
  design, else within the family's tolerance) before its time counts, and its speed is the
  ratio of the two times measured on the same inputs, back to back;
- when every candidate has had its trial, the fastest accepted one (only if faster than the
  default) is used for every later call and stored in the cache
  (:func:`spkernels.tuning.cache.store`), so the next run starts with it.

Every accepted candidate produced the default's output on real data, and for a deterministic
kernel a configuration that matches bitwise once matches on every input of that shape, so the
run's result equals the default configuration's (bitwise for the insertion gather).
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any, Callable

from . import active, cache
from .search import candidate_order
from .space import Space

__all__ = ["OnlineTuner", "insertion_tuner", "check_mode"]

_log = logging.getLogger("spkernels.tuning")

#: most candidates an online tuner tries by default (each trial costs one extra kernel call)
MAX_TRIALS = 6


def check_mode(tuning) -> str | None:
    """Validate a pipeline's ``tuning=`` argument: None (use what is stored) or ``"online"``."""
    if tuning is None or tuning == "online":
        return tuning
    raise ValueError(f"`tuning` must be None or 'online', got {tuning!r}")


def _copy(acc):
    if acc is None:
        return None
    if isinstance(acc, tuple):
        return tuple(_copy(a) for a in acc)
    return acc.copy() if hasattr(acc, "copy") else copy.deepcopy(acc)


class OnlineTuner:
    """Try candidates of `space` on the first calls of a loop, then keep the best.

    Parameters
    ----------
    family, backend, precision, size_class : str
        The cache key the kernel looks up (and under which the best is stored).
    space : Space
        The candidates (its default is the reference).
    ctx : dict
        The constraints' context.
    compare : callable
        ``compare(candidate_output, default_output) -> (ok, detail)``.
    max_trials : int
        Candidates tried (in the space's seeded random order), at most.
    seed : int
        Seed of the candidates' order.
    store : bool
        Store the best in the cache when the trials end.
    sync : callable, optional
        Called before reading a clock (a GPU backend's device synchronisation).
    """

    def __init__(self, family: str, backend: str, precision: str, size_class: str, space: Space, ctx: dict,
                 compare: Callable[[Any, Any], tuple], *, max_trials: int = MAX_TRIALS, seed: int = 0,
                 store: bool = True, sync: Callable[[], None] | None = None):
        self.family, self.backend, self.precision, self.size_class = family, backend, str(precision), size_class
        self.space = space
        self.compare = compare
        self.default = space.default()
        try:
            configs = space.configs(ctx) if not space.empty else [self.default]
        except ValueError as exc:  # the default breaks a constraint here: run it, try nothing else
            _log.warning("spkernels: no online tuning of %s on %s (%s)", family, backend, exc)
            configs = [self.default]
        self.pending = candidate_order(configs, "random", seed)[: max(0, int(max_trials))]
        self.store = store
        self.sync = sync or (lambda: None)
        self.calls = 0
        self.trials: list = []  # (config, ok, default seconds, candidate seconds, detail)
        self.best: dict | None = None if self.pending else dict(self.default)

    @property
    def done(self) -> bool:
        """True once the trials are over (then every call runs :attr:`best`)."""
        return self.best is not None

    def _timed(self, fn, cfg, acc):
        with active.using(self.family, cfg):
            self.sync()
            t0 = time.perf_counter()
            out = fn(acc)
            self.sync()
            return out, time.perf_counter() - t0

    def call(self, fn: Callable[[Any], Any], acc=None, *, trial: bool = True):
        """Run ``fn(acc)`` once (the kernel call, given the accumulators `acc`) and return its result.

        During the trials (and when `trial` is true: pass False for a call whose size differs
        from the loop's usual one, e.g. the last, shorter batch) the default runs on `acc` and
        one candidate on a copy; afterwards the chosen configuration runs alone.
        """
        self.calls += 1
        if self.done:
            with active.using(self.family, self.best):
                return fn(acc)
        if self.calls == 1 or not trial:  # warm-up, or an odd-sized call: the default alone
            with active.using(self.family, self.default):
                return fn(acc)
        cfg = self.pending.pop(0)
        spare = _copy(acc)
        out, t_def = self._timed(fn, self.default, acc)
        try:
            cand, t_cand = self._timed(fn, cfg, spare)
            ok, detail = self.compare(cand, out)
        except Exception as exc:  # noqa: BLE001 (a failing candidate is not chosen)
            ok, detail, t_cand = False, f"{type(exc).__name__}: {exc}", float("inf")
        self.trials.append((dict(cfg), bool(ok), t_def, t_cand, detail))
        if not self.pending:
            self._finish()
        return out

    def _finish(self):
        good = [(t_def / t_cand, cfg, t_def, t_cand) for cfg, ok, t_def, t_cand, _ in self.trials
                if ok and t_cand > 0]
        best = max(good, key=lambda g: g[0]) if good else None
        if best is not None and best[0] > 1.0:
            self.best, speedup, t_best, t_def = dict(best[1]), best[0], best[3], best[2]
        else:
            self.best, speedup = dict(self.default), 1.0
            t_def = min((t[2] for t in self.trials), default=0.0)
            t_best = t_def
        _log.info("spkernels: online tuning of %s on %s (%s): %s, %.2fx over the default after %d trial(s)",
                  self.family, self.backend, self.size_class, self.best, speedup, len(self.trials))
        if self.store:
            try:
                cache.store(self.family, self.backend, self.precision, self.size_class, self.best, time_s=t_best,
                            default_time_s=t_def, speedup=speedup, tried=len(self.trials) + 1,
                            rejected=sum(1 for t in self.trials if not t[1]), strategy="online")
            except OSError as exc:
                _log.warning("spkernels: could not store the online tuning result (%s)", exc)


def insertion_tuner(backend: str, complex_dtype, N: int, n: int, table_size: int = 10000, **kw) -> OnlineTuner:
    """An :class:`OnlineTuner` for insertion calls of `n` images of side `N` on `backend` (resolved)."""
    import numpy as np

    from .. import backends as _backends
    from . import families, sizes

    sync = None
    if backend in _backends.GPU_BACKENDS:
        from ..bench.timing import synchronize

        sync = lambda: synchronize(backend)  # noqa: E731
    ctx = dict(families.device_context(backend), n=int(n), N=int(N), itemsize=np.dtype(complex_dtype).itemsize // 2,
               table_size=int(table_size))
    return OnlineTuner("insertion", backend, np.dtype(complex_dtype).name, sizes.insertion(N, n),
                       families.space("insertion", backend), ctx, families.bitwise, sync=sync, **kw)
