"""MTIP settings: the coarse-to-fine :class:`Stage` and the run's :class:`MTIPConfig` (TOML-loadable)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .._arrays import ensure_int, ensure_real
from .phasing import PhasingSchedule


def _check_keys(where: str, raw, cls) -> None:
    """`raw` must be a table (dict) whose keys are fields of dataclass `cls`; the error names them."""
    if not isinstance(raw, dict):
        raise TypeError(f"`{where}` must be a table of settings, got {type(raw).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} in `{where}`: {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")


def _typed(where: str, raw: dict, cls) -> dict:
    """Check the values of `raw` against the annotated types of `cls` (int, float, bool, str):
    an int field takes a real integer (not 1.5, "2" or True), a float field any real number."""
    out = dict(raw)
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        v, name, kind = raw[f.name], f"{where}.{f.name}" if where else f.name, str(f.type)
        if v is None and "None" in kind:
            continue
        if kind.startswith("int"):
            out[f.name] = ensure_int(name, v)
        elif kind.startswith("float"):
            out[f.name] = ensure_real(name, v)
        elif kind.startswith("bool"):
            if not isinstance(v, bool):
                raise TypeError(f"`{name}` must be true or false, got {type(v).__name__} {v!r}")
        elif kind.startswith("str"):
            if not isinstance(v, str):
                raise TypeError(f"`{name}` must be a string, got {type(v).__name__} {v!r}")
    return out


@dataclass(frozen=True)
class Stage:
    """One rung of the coarse-to-fine schedule.

    Attributes
    ----------
    resolution : float
        Resolution limit in Å: pixels with ``|s| > 1/resolution`` are ignored in this stage.
    generations : int
        Generations run at this stage: exactly this many when `max_generations` is None (a fixed
        stage), else the fewest.
    n_references : int
        Reference orientations drawn (freshly rotated) each generation.
    max_generations : int or None
        Makes the stage adaptive: it ends by convergence (:class:`Convergence`) after
        `generations` to `max_generations` generations (:func:`~spkernels.mtip.schedule.stage_decision`).
    """

    resolution: float
    generations: int
    n_references: int
    max_generations: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "resolution", ensure_real("resolution", self.resolution, low=0.0, low_open=True))
        object.__setattr__(self, "generations", ensure_int("generations", self.generations, low=1, high=10**6))
        object.__setattr__(self, "n_references", ensure_int("n_references", self.n_references, low=1, high=10**10))
        if self.max_generations is not None:
            object.__setattr__(self, "max_generations", ensure_int("max_generations", self.max_generations,
                                                                   low=self.generations, high=10**6))

    @property
    def adaptive(self) -> bool:
        """Whether the stage ends by convergence (it has a `max_generations`)."""
        return self.max_generations is not None and self.max_generations > self.generations

    @property
    def most_generations(self) -> int:
        """The most generations the stage can run (before restarts)."""
        return self.max_generations if self.max_generations is not None else self.generations


@dataclass(frozen=True)
class Convergence:
    """When an adaptive stage (:attr:`Stage.max_generations`) has converged; TOML table ``[mtip.convergence]``.

    Measured per generation on the orientations matching returned against those it started
    from (:func:`~spkernels.mtip.schedule.generation_metrics`), with the stage's angular
    resolution ``resolution / diameter`` radians as the unit of "moved".

    Attributes
    ----------
    settled_fraction : float
        The stage has settled when at least this share of the images moved by less than
        `settled_angle` stage units in the last generation ...
    settled_angle : float
        ... in units of the stage's angular resolution ``resolution / diameter`` (radians), and
        at least 1.5 local refinement steps (``local_angle``: an image that took one is settling).
    score_tolerance : float
        ... or (not in the final stage) when the mean score changed by less than this fraction
        from the previous generation of the stage while the median image moved by less than
        `settled_angle` units.
    unbroken_angle : float
        Degrees: a median move above this means the assignments are still near-random (the
        model's symmetry is not broken): such a stage never ends as settled; at its maximum it
        takes a fresh random start (orientations and model) while `restarts` remain.
    restarts : int
        Fresh random starts allowed in the whole run.
    budget : int or None
        Total generations of the run, restarts included (None: the sum of the stages' maxima,
        plus the generations of each restarted attempt).
        An adaptive stage ends early when the rest is needed for the later stages' minima and
        the final stage's maximum.
    """

    settled_fraction: float = 0.9
    settled_angle: float = 1.0
    score_tolerance: float = 1e-3
    unbroken_angle: float = 30.0
    restarts: int = 1
    budget: int | None = None

    def __post_init__(self):
        set_ = lambda name, v: object.__setattr__(self, name, v)  # noqa: E731 (frozen dataclass)
        set_("settled_fraction", ensure_real("settled_fraction", self.settled_fraction, low=0.0, high=1.0))
        set_("settled_angle", ensure_real("settled_angle", self.settled_angle, low=0.0, low_open=True))
        set_("score_tolerance", ensure_real("score_tolerance", self.score_tolerance, low=0.0))
        set_("unbroken_angle", ensure_real("unbroken_angle", self.unbroken_angle, low=0.0, high=180.0,
                                           low_open=True))
        set_("restarts", ensure_int("restarts", self.restarts, low=0, high=1000))
        if self.budget is not None:
            set_("budget", ensure_int("budget", self.budget, low=1, high=10**6))


@dataclass(frozen=True)
class MTIPConfig:
    """Settings of :func:`~spkernels.mtip.reconstruct.reconstruct`; load them from TOML with :meth:`from_toml`.

    Attributes
    ----------
    seed : int
        Seeds every random choice (initial orientations, reference rotations, phasing starts);
        the same seed and inputs give bitwise the same result, also across ``--resume``.
    starts : int
        Independent reconstructions from random starts, seeds ``seed``, ``seed + 1``, ...; the one
        whose final phasing error (the Fourier-space misfit of its last phasing to the merged
        intensities: the data's, never the truth's) is lowest is returned. From random
        orientations a run sometimes settles in a self-consistent wrong model at a good-looking
        median orientation error; in the regime study (docs, "MTIP regimes") the lower final
        error picked the better map in each of the 6 pairs of starts on the same data whose
        resolutions differed by more than 10% (their errors 7-137% apart). It is a help, not a
        guarantee: of four starts on the 2CEX data of the test suite, the one good map (15.8 Å
        against 24.3-26.6 Å) had the highest final error, so three starts would have kept a
        24.3 Å one. Costs ``starts`` times the time; default 1.
    stages : tuple of Stage
        Coarse-to-fine schedule; empty means
        :func:`~spkernels.mtip.schedule.default_schedule` built from the data (adaptive stages).
        Stages given here run exactly their ``generations`` unless they set ``max_generations``.
    convergence : Convergence
        When an adaptive stage ends, the total budget and the fresh random starts
        (:func:`~spkernels.mtip.schedule.stage_decision`); every decision is logged and kept in
        the history (``decision``).
    particle_diameter : float or None
        Å; estimated from the data's central speckle when None.
    box_factor : float
        Real-space box L = ``box_factor`` × diameter (the autocorrelation spans 2 × diameter).
    phasing : PhasingSchedule
        Phasing iterations per generation.
    n_phasing_runs : int
        Independent phasing runs averaged each generation.
    final_phasing_runs : int
        Phasing runs averaged in the last generation, which makes the returned density:
        phasing from a noisy autocorrelation lands on slightly different solutions from
        different starts, and their aligned average is better than any one of them.
    cg_maxiter, cg_tol : int, float
        Merge solver limits.
    tikhonov : float
        λ relative to the normal operator's diagonal (the total pixel weight).
    photon_floor : float
        Model slices are clipped below at this fraction of the mean photon count per pixel, so
        the Poisson log stays finite.
    reference_batch : int
        Reference orientations sliced and matched per batch (bounds memory).
    eps : float
        NUFFT accuracy.
    backend : str
        Kernel backend for slicing, matching, merging (``"auto"`` picks the fastest here).
    keep_current : bool
        Let each image's current orientation compete in matching.
    slice_phased : bool
        Slice the autocorrelation of the phased density (consistent with a real, compact
        object) rather than the merged autocorrelation.
    switch_margin : float
        Hysteresis: an image leaves its current orientation only for a candidate whose score
        beats the current one by ``switch_margin`` standard deviations of the score difference
        (Poisson noise of ``Σ d log(m_new / m_cur)``). Counters the winner's curse of taking the
        best of many noisy scores. 0 disables.
    local_candidates : int
        Random perturbations of each image's current orientation offered as extra candidates
        (local refinement); with any, the current orientation turned 180° about the beam axis
        (its Friedel twin, whose pattern differs only through the Ewald curvature) competes
        too. Measured on 3000 images, final stage at 9.96 Å: with 4 candidates and 3000
        references the median orientation error fell from 3.9° to 2.2° in 3 generations and
        FSC-0.5 from 12.1 to 10.8 Å, where 6000 references alone reached 3.4° and 12.1 Å.
    local_angle : float or None
        Degrees; rotation angle of the perturbations (None: half the reference grid spacing).
    soft_stages : int
        The first ``soft_stages`` stages use EMC-like soft assignment
        (:func:`~spkernels.mtip.matching.soft_assign`) instead of the best match per image.
    soft_temperature : float
        Temperature of the soft weights in units of each image's score spread.
    """

    seed: int = 0
    starts: int = 1
    stages: tuple = ()
    convergence: Convergence = field(default_factory=Convergence)
    particle_diameter: float | None = None
    box_factor: float = 2.2
    phasing: PhasingSchedule = field(default_factory=PhasingSchedule)
    n_phasing_runs: int = 1
    final_phasing_runs: int = 4
    cg_maxiter: int = 60
    cg_tol: float = 1e-6
    tikhonov: float = 1e-4
    photon_floor: float = 1e-3
    reference_batch: int = 1000
    eps: float = 1e-4
    backend: str = "auto"
    keep_current: bool = True
    slice_phased: bool = True
    switch_margin: float = 0.0
    local_candidates: int = 4
    local_angle: float | None = None
    soft_stages: int = 0
    soft_temperature: float = 1.0

    def __post_init__(self):
        set_ = lambda name, v: object.__setattr__(self, name, v)  # noqa: E731 (frozen dataclass)
        if isinstance(self.stages, (str, bytes, dict)) or not isinstance(self.stages, (tuple, list)):
            raise TypeError(f"`stages` must be a list of stage tables, got {type(self.stages).__name__}")
        stages = []
        for i, st in enumerate(self.stages):
            if isinstance(st, Stage):
                stages.append(st)
                continue
            _check_keys(f"stages[{i}]", st, Stage)
            missing = [f.name for f in dataclasses.fields(Stage)
                       if f.name not in st and f.default is dataclasses.MISSING]
            if missing:
                raise ValueError(f"`stages[{i}]` lacks {', '.join(missing)}")
            try:
                stages.append(Stage(**st))
            except (TypeError, ValueError) as exc:
                raise type(exc)(str(exc).replace("`", f"`stages[{i}].", 1)) from None
        set_("stages", tuple(stages))
        if isinstance(self.convergence, dict):
            _check_keys("convergence", self.convergence, Convergence)
            typed = _typed("convergence", self.convergence, Convergence)
            try:
                set_("convergence", Convergence(**typed))
            except (TypeError, ValueError) as exc:
                raise type(exc)(str(exc).replace("`", "`convergence.", 1)) from None
        elif not isinstance(self.convergence, Convergence):
            raise TypeError(f"`convergence` must be a Convergence or a table, got {type(self.convergence).__name__}")
        if isinstance(self.phasing, dict):
            _check_keys("phasing", self.phasing, PhasingSchedule)
            typed = _typed("phasing", self.phasing, PhasingSchedule)
            try:
                set_("phasing", PhasingSchedule(**typed))
            except (TypeError, ValueError) as exc:
                raise type(exc)(str(exc).replace("`", "`phasing.", 1)) from None
        elif not isinstance(self.phasing, PhasingSchedule):
            raise TypeError(f"`phasing` must be a PhasingSchedule or a table, got {type(self.phasing).__name__}")
        set_("seed", ensure_int("seed", self.seed, low=0))
        set_("starts", ensure_int("starts", self.starts, low=1, high=1000))
        if self.particle_diameter is not None:
            set_("particle_diameter", ensure_real("particle_diameter", self.particle_diameter, low=0.0, low_open=True))
        set_("box_factor", ensure_real("box_factor", self.box_factor, low=2.0))  # the autocorrelation spans 2x
        # Counts have generous upper limits, so a typo (10**30) fails here and not hours later.
        for name, top in (("n_phasing_runs", 1000), ("final_phasing_runs", 1000), ("cg_maxiter", 10**6),
                          ("reference_batch", 10**8)):
            set_(name, ensure_int(name, getattr(self, name), low=1, high=top))
        for name, top in (("local_candidates", 1000), ("soft_stages", 10**4)):
            set_(name, ensure_int(name, getattr(self, name), low=0, high=top))
        set_("switch_margin", ensure_real("switch_margin", self.switch_margin, low=0.0))
        if self.local_angle is not None:
            set_("local_angle", ensure_real("local_angle", self.local_angle, low=0.0, low_open=True))
        for name in ("soft_temperature", "cg_tol", "tikhonov", "photon_floor"):
            set_(name, ensure_real(name, getattr(self, name), low=0.0, low_open=True))
        set_("eps", ensure_real("eps", self.eps, low=0.0, high=1.0, low_open=True, high_open=True))
        for name in ("keep_current", "slice_phased"):
            if not isinstance(getattr(self, name), (bool,)):
                raise TypeError(f"`{name}` must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.backend, str):
            raise TypeError(f"`backend` must be a string, got {type(self.backend).__name__}")

    @classmethod
    def from_toml(cls, path) -> "MTIPConfig":
        """Read a config file: top-level keys, ``[phasing]`` and ``[convergence]`` tables, ``[[stages]]`` tables."""
        import tomllib

        with open(path, "rb") as f:
            raw = tomllib.load(f)
        return cls.from_dict(raw.get("mtip", raw))

    @classmethod
    def from_dict(cls, raw: dict) -> "MTIPConfig":
        """Build from a plain dict (a TOML table).

        Unknown keys in any table (the settings, ``phasing``, ``convergence``, each of ``stages``) and values of
        the wrong type (``generations = 1.5`` or ``"2"``, ``eps = "1e-4"``) are a ``ValueError``
        / ``TypeError`` naming the key, e.g. ``stages[1].generations``.
        """
        if not isinstance(raw, dict):
            raise TypeError(f"the MTIP settings must be a table, got {type(raw).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown MTIP settings: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**raw)

    def to_dict(self) -> dict:
        """Plain dict of the settings (TOML/JSON-ready; :meth:`from_dict` reads it back)."""
        d = dataclasses.asdict(self)
        d["stages"] = [dataclasses.asdict(s) for s in self.stages]
        return d
