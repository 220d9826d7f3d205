"""Searchers over a :class:`~spkernels.tuning.space.Space`: exhaustive and seeded random.

Every search runs the default configuration first: its output is the reference, its time the
baseline. Each candidate then runs once (warm-up and check): its output must match the
reference (``compare(output, reference)`` returns ``(ok, detail)``: bitwise where the kernel is
deterministic by design, within its stated tolerance otherwise) before any of its time counts;
a wrong candidate is recorded as ``"rejected"`` and never chosen, one that raises as
``"error"``. Only configurations :meth:`Space.configs` lists (those meeting every constraint)
are ever handed to the runner.

The chosen configuration is the fastest accepted one, confirmed against the default in a final
interleaved re-measurement; when it is not faster there, the default is kept (tuning never makes
a kernel slower than its default on the machine it ran on).
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from typing import Any, Callable, Mapping

from .space import Space

__all__ = ["Trial", "TuneResult", "tune", "candidate_order", "measure", "EXHAUSTIVE_LIMIT"]

#: spaces with at most this many valid configurations are searched exhaustively by ``strategy="auto"``
EXHAUSTIVE_LIMIT = 48


@dataclasses.dataclass
class Trial:
    """One configuration tried: ``status`` is ``"ok"``, ``"rejected"`` (wrong output) or ``"error"``."""

    config: dict
    status: str
    time_s: float | None = None
    detail: str = ""


@dataclasses.dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes
    ----------
    space : str
        The space's name.
    best : dict
        The chosen configuration (the default when nothing beat it).
    best_time_s, default_time_s : float
        Their times from the final interleaved re-measurement (seconds per call).
    trials : list of Trial
        Every configuration tried, the default first.
    strategy : str
        ``"exhaustive"`` or ``"random"``.
    stopped : str
        Why the search ended: ``"exhausted"``, ``"count"`` or ``"budget"``.
    n_valid : int
        Valid configurations in the space under the search's context.
    """

    space: str
    best: dict
    best_time_s: float
    default_time_s: float
    trials: list
    strategy: str
    stopped: str
    n_valid: int

    @property
    def speedup(self) -> float:
        """Default time over tuned time (1.0 when the default was kept)."""
        return self.default_time_s / self.best_time_s if self.best_time_s > 0 else 1.0

    @property
    def rejected(self) -> list:
        """Trials whose output did not match the default's."""
        return [t for t in self.trials if t.status == "rejected"]


def measure(fn: Callable[[], Any], repeat: int = 3, min_time: float = 0.0) -> float:
    """Median seconds of `repeat` calls of `fn` (each call repeated until it lasts `min_time`)."""
    samples = []
    for _ in range(max(1, int(repeat))):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        samples.append(dt / n)
    return statistics.median(samples)


def candidate_order(configs: list, strategy: str, seed: int) -> list:
    """The candidates after the default (``configs[0]``) in search order: declaration order for
    ``"exhaustive"``, a permutation seeded by `seed` for ``"random"``."""
    rest = list(configs[1:])
    if strategy == "random":
        random.Random(int(seed)).shuffle(rest)
    elif strategy != "exhaustive":
        raise ValueError(f"`strategy` must be 'exhaustive' or 'random', got {strategy!r}")
    return rest


def _default_compare(out, ref):
    import numpy as np

    from .._arrays import to_host

    a, b = (np.asarray(to_host(x)) for x in (out, ref))
    ok = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return ok, "" if ok else "output differs from the default's"


def tune(space: Space, runner: Callable[[dict], Any], *, ctx: Mapping | None = None,
         compare: Callable[[Any, Any], tuple] | None = None, strategy: str = "auto", budget_s: float | None = None,
         max_configs: int | None = None, seed: int = 0, repeat: int = 3, min_time: float = 0.0,
         progress: Callable[[Trial], None] | None = None) -> TuneResult:
    """Search `space` for the fastest configuration whose output matches the default's.

    Parameters
    ----------
    space : Space
        The declared space (its default is the reference).
    runner : callable
        ``runner(config) -> output``: runs the kernel once with `config` and returns its output
        (finished: GPU runners synchronise before returning).
    ctx : mapping, optional
        The device/problem context the constraints read.
    compare : callable, optional
        ``compare(output, reference) -> (ok, detail)``; default: bitwise equality of arrays.
    strategy : {"auto", "exhaustive", "random"}
        ``"auto"``: exhaustive up to :data:`EXHAUSTIVE_LIMIT` valid configurations, else random.
    budget_s : float, optional
        Stop trying new candidates once this many seconds have passed (the default's
        measurement and the final confirmation always run).
    max_configs : int, optional
        Try at most this many candidates besides the default.
    seed : int
        Seed of the random order.
    repeat, min_time
        Samples per timing (median) and the least duration of one sample.
    progress : callable, optional
        Called with each finished :class:`Trial`.

    Returns
    -------
    TuneResult
    """
    if not isinstance(space, Space):
        raise TypeError(f"`space` must be a Space, got {type(space).__name__}")
    if not callable(runner):
        raise TypeError("`runner` must be callable")
    if strategy not in ("auto", "exhaustive", "random"):
        raise ValueError(f"`strategy` must be 'auto', 'exhaustive' or 'random', got {strategy!r}")
    if budget_s is not None and not budget_s >= 0:
        raise ValueError(f"`budget_s` must be >= 0, got {budget_s!r}")
    if max_configs is not None and (isinstance(max_configs, bool) or int(max_configs) < 0):
        raise ValueError(f"`max_configs` must be >= 0, got {max_configs!r}")
    compare = compare or _default_compare
    ctx = {} if ctx is None else ctx
    t_start = time.perf_counter()
    configs = space.configs(ctx)
    if strategy == "auto":
        strategy = "exhaustive" if len(configs) <= EXHAUSTIVE_LIMIT else "random"
    default = configs[0]
    reference = runner(dict(default))
    t_default = measure(lambda: runner(dict(default)), repeat, min_time)
    trials = [Trial(dict(default), "ok", t_default, "default")]
    if progress:
        progress(trials[0])
    stopped = "exhausted"
    for i, cfg in enumerate(candidate_order(configs, strategy, seed)):
        if max_configs is not None and i >= int(max_configs):
            stopped = "count"
            break
        if budget_s is not None and time.perf_counter() - t_start >= budget_s:
            stopped = "budget"
            break
        try:
            out = runner(dict(cfg))
            ok, detail = compare(out, reference)
        except Exception as exc:  # noqa: BLE001 (a configuration that fails is simply not chosen)
            trial = Trial(dict(cfg), "error", None, f"{type(exc).__name__}: {exc}")
        else:
            if not ok:
                trial = Trial(dict(cfg), "rejected", None, detail)
            else:
                trial = Trial(dict(cfg), "ok", measure(lambda: runner(dict(cfg)), repeat, min_time), detail)
        trials.append(trial)
        if progress:
            progress(trial)
    good = [t for t in trials if t.status == "ok"]
    best = min(good, key=lambda t: t.time_s)
    best_cfg, t_best, t_def = dict(default), t_default, t_default
    if best.config != default:
        # confirm against the default, interleaved, so drifting machine load hits both alike
        tb, td = [], []
        for _ in range(max(1, int(repeat))):
            td.append(measure(lambda: runner(dict(default)), 1, min_time))
            tb.append(measure(lambda: runner(dict(best.config)), 1, min_time))
        t_def, t_b = statistics.median(td), statistics.median(tb)
        if t_b < t_def:
            best_cfg, t_best = dict(best.config), t_b
        else:
            t_best = t_def
    return TuneResult(space.name, best_cfg, t_best, t_def, trials, strategy, stopped, len(configs))
