"""Declared tuning spaces: named parameters with their values, and constraints over a configuration.

A :class:`Space` is the product of its parameters' values, filtered by its constraints. A
constraint is a callable ``constraint(config, ctx) -> bool`` over one configuration (a dict of
parameter name -> value) and the context ``ctx`` (a dict describing the device and the problem:
``max_threads``, ``max_shared_bytes``, sizes, ...). :meth:`Space.configs` enumerates the valid
configurations only, so a searcher never hands a runner a configuration that violates one.

The default configuration (what the kernel runs when nothing is tuned) is part of the space: it
is the reference every candidate's output is checked against, and must itself be valid.

Examples
--------
>>> s = Space("demo", [Param("block", (32, 64, 128, 2048), default=64),
...                    Param("tile", (1, 2, 4, 8), default=2)],
...           [Constraint("threads <= device limit", lambda c, ctx: c["block"] <= ctx["max_threads"]),
...            Constraint("tile divides block", lambda c, ctx: c["block"] % c["tile"] == 0)])
>>> len(s.configs({"max_threads": 1024}))
12
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable, Mapping, Sequence

__all__ = ["Param", "Constraint", "Space", "EMPTY"]


@dataclasses.dataclass(frozen=True)
class Param:
    """One tuning parameter.

    Attributes
    ----------
    name : str
        The key of the parameter in a configuration.
    values : tuple
        The values the search may give it (JSON-serialisable: int, float, str, bool, tuples).
    default : object
        The value the kernel uses when nothing is tuned; must be one of `values`.
    help : str
        What the parameter does (shown by ``spkernels tune``).
    """

    name: str
    values: tuple
    default: Any
    help: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"`name` must be a non-empty string, got {self.name!r}")
        vals = tuple(self.values)
        if not vals:
            raise ValueError(f"parameter {self.name!r}: `values` must not be empty")
        object.__setattr__(self, "values", vals)
        if self.default not in vals:
            raise ValueError(f"parameter {self.name!r}: the default {self.default!r} is not one of its values {vals}")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A named predicate ``check(config, ctx) -> bool`` a configuration must satisfy."""

    name: str
    check: Callable[[Mapping, Mapping], bool]

    def __call__(self, config: Mapping, ctx: Mapping) -> bool:
        return bool(self.check(config, ctx))


class Space:
    """The tuning space of one kernel family on one backend.

    Parameters
    ----------
    name : str
        E.g. ``"insertion/cuda"``.
    params : sequence of Param
        Parameters (names unique). An empty sequence is the space of a kernel without knobs: it
        holds one configuration, the empty default.
    constraints : sequence of Constraint or callables, optional
        Every valid configuration satisfies all of them (bare callables get their
        ``__name__`` as name).
    note : str
        Why the space is what it is (e.g. "no knob: one fused pass"), shown by ``spkernels tune``.
    """

    def __init__(self, name: str, params: Sequence[Param] = (), constraints: Sequence = (), note: str = ""):
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a string, got {type(name).__name__}")
        params = tuple(params)
        for p in params:
            if not isinstance(p, Param):
                raise TypeError(f"`params` must hold Param objects, got {type(p).__name__}")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"`params` of space {name!r} repeat a name: {names}")
        cons = []
        for c in constraints:
            if isinstance(c, Constraint):
                cons.append(c)
            elif callable(c):
                cons.append(Constraint(getattr(c, "__name__", "constraint"), c))
            else:
                raise TypeError(f"`constraints` must hold callables, got {type(c).__name__}")
        self.name = name
        self.params = params
        self.constraints = tuple(cons)
        self.note = note

    def __repr__(self) -> str:
        return f"Space({self.name!r}, {len(self.params)} params, {len(self.constraints)} constraints)"

    @property
    def empty(self) -> bool:
        """True for a kernel without knobs on this backend."""
        return not self.params

    @property
    def names(self) -> tuple:
        """Parameter names, in declaration order."""
        return tuple(p.name for p in self.params)

    def default(self) -> dict:
        """The default configuration (the kernel's behaviour when nothing is tuned)."""
        return {p.name: p.default for p in self.params}

    def cardinality(self) -> int:
        """Size of the unconstrained product of the parameters' values."""
        return math.prod(len(p.values) for p in self.params)

    def violations(self, config: Mapping, ctx: Mapping | None = None) -> list:
        """Names of the constraints `config` breaks (and of unknown/missing keys or values)."""
        ctx = {} if ctx is None else ctx
        bad = []
        if set(config) != set(self.names):
            bad.append(f"keys {sorted(config)} != parameters {sorted(self.names)}")
            return bad
        for p in self.params:
            if config[p.name] not in p.values:
                bad.append(f"{p.name}={config[p.name]!r} not among {p.values}")
        if bad:
            return bad
        return [c.name for c in self.constraints if not c(config, ctx)]

    def is_valid(self, config: Mapping, ctx: Mapping | None = None) -> bool:
        """True when `config` has exactly the space's parameters, allowed values, and meets every constraint."""
        return not self.violations(config, ctx)

    def iter_all(self):
        """Every configuration of the unconstrained product, in a fixed order."""
        for combo in itertools.product(*(p.values for p in self.params)):
            yield dict(zip(self.names, combo))

    def configs(self, ctx: Mapping | None = None) -> list:
        """The valid configurations under `ctx`, default first (when valid), then in a fixed order.

        Raises
        ------
        ValueError
            When the default configuration itself breaks a constraint under `ctx` (the space
            is then declared wrongly for this device or problem).
        """
        ctx = {} if ctx is None else ctx
        d = self.default()
        bad = self.violations(d, ctx)
        if bad:
            raise ValueError(f"space {self.name!r}: the default configuration {d} breaks {bad} under {dict(ctx)}")
        out = [d]
        for c in self.iter_all():
            if c != d and self.is_valid(c, ctx):
                out.append(c)
        return out


#: the space of a kernel without knobs (one configuration: the empty default)
EMPTY = Space("empty", (), (), note="no knob")
