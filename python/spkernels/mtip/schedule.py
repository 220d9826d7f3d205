"""The coarse-to-fine schedule: particle size from the data (Guinier or a shape fit), grid sizes, default stages."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np

from .._arrays import ensure_int, ensure_real
from .config import Stage
from .data import SPIData

log = logging.getLogger("spkernels.mtip.schedule")


MIN_GUINIER_PIXELS = 12  # fewer pixels inside the Guinier range: the shape fit decides


@dataclass(frozen=True)
class SizeEstimate:
    """A particle size and how it was found (:func:`size_estimate`).

    Attributes
    ----------
    diameter : float
        Å; the box (``box_factor`` × diameter) and the schedule's grids follow from it.
    method : str
        ``"guinier"`` (3.3 × the Guinier radius of gyration), ``"shape-fit"`` (the extent of the
        uniform ellipsoid whose orientation-averaged intensity fits the radial mean) or
        ``"given"`` (``MTIPConfig.particle_diameter``).
    guinier_pixels : int
        Pixels inside the Guinier range ``2π |s| Rg < 1.3`` at the fitted Rg (0 when not fitted).
    radius_of_gyration : float or None
        Å, the Guinier fit's.
    shape_diameter : float or None
        Å, the shape fit's.
    reason : str
        One sentence: why this method.
    """

    diameter: float
    method: str
    guinier_pixels: int = 0
    radius_of_gyration: float | None = None
    shape_diameter: float | None = None
    reason: str = ""

    def __post_init__(self):
        for name in ("diameter", "radius_of_gyration", "shape_diameter"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "guinier_pixels", int(self.guinier_pixels))

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready) of the fields."""
        return dataclasses.asdict(self)


def _usable_profile(data: SPIData):
    """|s|, mean photons and weight of the pixels that can inform a size: unmasked, off-centre, lit."""
    if not isinstance(data, SPIData):
        raise TypeError(f"`data` must be an SPIData, got {type(data).__name__}")
    w = data.pixel_weights()
    r = np.linalg.norm(data.s, axis=1)
    mean_img = data.intensities.mean(axis=0, dtype=np.float64)
    usable = (w > 0) & (r > 0) & (mean_img > 0)
    if usable.sum() < 4:
        raise ValueError("too few unmasked low-resolution pixels with photons to estimate the particle size")
    return r, mean_img, usable


def _guinier(r, mean_img, usable):
    """``(Rg, pixels inside the range at Rg, converged)`` of the iterated fit of
    ``ln I = ln I0 − (4π²/3) Rg² s²`` over ``2π |s| Rg < 1.3``.

    A window with fewer than 4 pixels or a single radius (a centred detector's innermost 4
    pixels share one) cannot fix a slope: the two innermost radii are fitted instead, and the
    iteration may then cycle; ``converged`` says whether it settled (to 0.1 %, or flipping
    between windows whose fits agree within 10 %).
    """
    order = np.sort(r[usable])
    radii = np.unique(np.round(order / order[0], 6)) * order[0]
    rg = 0.5 / order[min(8, usable.sum() - 1)]  # start wide: a few innermost pixels
    converged = False
    seen = []
    for _ in range(20):
        seen.append(rg)
        sel = usable & (2 * np.pi * r * rg < 1.3)
        if sel.sum() < 4 or np.ptp(r[sel]) <= 1e-6 * order[0]:
            sel = usable & (r <= radii[min(1, len(radii) - 1)] * (1 + 1e-6))
        a = np.stack([np.ones(sel.sum()), -(4 * np.pi**2 / 3) * r[sel] ** 2], axis=1)
        coef, *_ = np.linalg.lstsq(a, np.log(mean_img[sel]), rcond=None)
        new = float(np.sqrt(max(coef[1], 1e-12)))
        if abs(new - rg) < 1e-3 * rg:
            rg, converged = new, True
            break
        rg = new
    if not converged and max(seen[-4:]) < 1.1 * min(seen[-4:]):
        # The window flips between neighbouring pixel rings with nearly the same Rg: settled.
        rg, converged = float(np.mean(seen[-4:])), True
    inside = usable & (2 * np.pi * r * rg < 1.3)
    n_radii = len(np.unique(np.round(r[inside] / order[0], 6)))
    return rg, int(inside.sum()) if n_radii >= 2 else 0, converged


def radius_of_gyration(data: SPIData) -> float:
    """Guinier radius of gyration (Å) from the low-|s| fall-off of the mean image.

    ``ln I(s) ≈ ln I0 − (4π²/3) Rg² |s|²`` holds for ``2π |s| Rg < 1.3``; the fit window is
    narrowed iteratively to that range. With fewer than 4 pixels inside it, the 4 innermost
    are fitted (logged); :func:`size_estimate` then uses :func:`shape_diameter` instead.

    Parameters
    ----------
    data : SPIData

    Returns
    -------
    float
    """
    rg, n_inside, converged = _guinier(*_usable_profile(data))
    if n_inside < 4 or not converged:
        log.info("only %d pixels (of two or more radii) inside the Guinier range%s: the fit used the innermost "
                 "two radii", n_inside, "" if converged else ", and the fit did not settle")
    return rg


def radial_profile(data: SPIData, n_bins: int | None = None):
    """Radial mean of the mean image: ``(|s| of each bin (Å⁻¹), mean photons, pixels per bin)``.

    For random orientations the mean image is the orientation average of ``|F|²``, a function of
    ``|s|`` only. Bins are equally wide between the innermost and outermost usable pixel (default
    ``√(pixels) / 1.5`` of them, at least 8); empty bins are dropped.

    Parameters
    ----------
    data : SPIData
    n_bins : int, optional

    Returns
    -------
    tuple of three arrays
    """
    r, mean_img, usable = _usable_profile(data)
    w = data.pixel_weights()
    n = int(usable.sum())
    nb = max(8, int(math.sqrt(n) / 1.5)) if n_bins is None else ensure_int("n_bins", n_bins, low=2)
    edges = np.linspace(r[usable].min(), r[usable].max() * (1 + 1e-9), nb + 1)
    b = np.clip(np.searchsorted(edges, r[usable], side="right") - 1, 0, nb - 1)
    ww = w[usable]
    wsum = np.bincount(b, ww, nb)
    isum = np.bincount(b, ww * mean_img[usable], nb)
    ssum = np.bincount(b, ww * r[usable], nb)
    cnt = np.bincount(b, minlength=nb)
    keep = wsum > 0
    return ssum[keep] / wsum[keep], isum[keep] / wsum[keep], cnt[keep]


_GL_X, _GL_W = np.polynomial.legendre.leggauss(32)
_MU, _MU_W = 0.5 * (_GL_X + 1.0), 0.5 * _GL_W  # Gauss–Legendre on [0, 1]


def ellipsoid_intensity(s, a: float, c: float) -> np.ndarray:
    """Orientation-averaged ``|F|²`` of a uniform ellipsoid of revolution, normalised to 1 at s = 0.

    Semi-axes `a`, `a`, `c` (Å); ``I(s) = ∫₀¹ Φ(2π s R(μ))² dμ`` with
    ``R(μ)² = a² (1 − μ²) + c² μ²`` and the sphere amplitude ``Φ(x) = 3 (sin x − x cos x) / x³``.

    Parameters
    ----------
    s : array
        |s| in Å⁻¹.
    a, c : float
        Semi-axes in Å.

    Returns
    -------
    ndarray, the shape of `s`
    """
    s = np.asarray(s, dtype=np.float64)
    rad = np.sqrt(a * a * (1 - _MU**2) + c * c * _MU**2)
    x = 2 * np.pi * s[..., None] * rad
    small = x < 1e-3
    xs = np.where(small, 1.0, x)
    phi = np.where(small, 1.0 - x * x / 10.0, 3 * (np.sin(xs) - xs * np.cos(xs)) / xs**3)
    return (phi**2 * _MU_W).sum(axis=-1)


SHAPE_FIT_DECADES = 2.0  # the fit uses the bins within this many decades of the innermost's intensity
SHAPE_FIT_MARGIN = 1.15  # the ellipsoid's extent undercuts irregular particles' maximum dimension
_SPREAD = np.array([0.85, 0.925, 1.0, 1.075, 1.15])  # sizes averaged: fills a sphere's exact zeros


def shape_diameter(data: SPIData, *, return_axes: bool = False):
    """Particle diameter (Å) from the shape of the radial mean intensity, without a Guinier range.

    The radial mean (:func:`radial_profile`) is fitted in log space, over the bins from the centre
    out to where the intensity stays ``SHAPE_FIT_DECADES`` decades below the innermost bin's
    (the central speckle and its first ring), by the orientation-averaged intensity of a uniform
    ellipsoid of revolution (:func:`ellipsoid_intensity`: a sphere, a rod-like prolate or a
    disc-like oblate body; averaged over ±15 % in size, which fills the exact zeros no real
    particle has) over a grid of sizes and axis ratios, the scale fitted per model. A sphere's
    first minimum, at ``|s| ≈ 1.43 / D``, fixes D; a rod's slow decay its length. The diameter is
    the larger of ``SHAPE_FIT_MARGIN`` × the best ellipsoid's extent ``2 max(a, c)`` and 3.3 × its
    radius of gyration (the Guinier rule, for irregular bodies whose extent the ellipsoid
    undercuts). Works when no pixel lies close enough to the beam for a Guinier fit (large
    particles, beam stops).

    Parameters
    ----------
    data : SPIData
    return_axes : bool
        Also return the fitted semi-axes ``(a, c)``.

    Returns
    -------
    float, or (float, (a, c))
    """
    s, prof, _ = radial_profile(data)
    top = prof[: max(2, len(prof) // 20)].max()
    # The fit range: from the centre until everything further out lies below the floor (minima
    # before a ring above it stay in; at least 6 bins).
    envelope = np.maximum.accumulate(prof[::-1])[::-1]
    below = envelope < top * 10.0 ** (-SHAPE_FIT_DECADES)
    last = int(np.flatnonzero(below)[0]) + 1 if below.any() else len(prof)
    last = min(max(last, 6), len(prof))
    s_fit, y = s[:last], np.log(prof[:last])
    smin, smax = float(s_fit[0]), float(s_fit[-1])
    sizes = np.geomspace(0.2 / smax, 2.0 / smin, 120)  # semi-axis a, Å
    ratios = np.geomspace(0.2, 6.0, 31)  # c / a
    best = (np.inf, None, None)
    for q in ratios:
        for a in sizes:
            m = np.mean([ellipsoid_intensity(s_fit, f * a, f * q * a) for f in _SPREAD], axis=0)
            lm = np.log(np.maximum(m, 1e-300))
            k = float((y - lm).mean())
            err = float(((y - lm - k) ** 2).mean())
            if err < best[0]:
                best = (err, a, q * a)
    _, a, c = best
    rg = math.sqrt((2 * a * a + c * c) / 5.0)
    d = max(SHAPE_FIT_MARGIN * 2.0 * max(a, c), 3.3 * rg)
    return (d, (a, c)) if return_axes else d


PROLATE_LIMIT = 1.55  # c/a above which a prolate ellipsoid's extent exceeds 3.3 Rg


def size_estimate(data: SPIData, *, min_guinier_pixels: int = MIN_GUINIER_PIXELS) -> SizeEstimate:
    """Particle diameter from the data, by the method the data support; never fails silently.

    Decision: the Guinier fit (:func:`radius_of_gyration`, D = 3.3 Rg) when it settled with at
    least `min_guinier_pixels` pixels, of two or more radii, inside its range
    ``2π |s| Rg < 1.3``, unless the shape fit of the radial mean (:func:`shape_diameter`) finds a
    prolate body with ``c / a > PROLATE_LIMIT``: 3.3 Rg covers the extent of every oblate and
    mildly prolate ellipsoid, not of a rod (up to 4.47 Rg), which then takes the shape fit's
    larger value. Without a Guinier range the shape fit decides: it needs no pixel that close to
    the beam.
    The choice and its reason are logged (INFO) and returned.

    Parameters
    ----------
    data : SPIData
    min_guinier_pixels : int

    Returns
    -------
    SizeEstimate
    """
    min_guinier_pixels = ensure_int("min_guinier_pixels", min_guinier_pixels, low=1)
    rg, n_inside, converged = _guinier(*_usable_profile(data))
    if converged and n_inside >= min_guinier_pixels:
        d, (a, c) = shape_diameter(data, return_axes=True)
        why = f"{n_inside} pixels inside the Guinier range (>= {min_guinier_pixels})"
        if c > PROLATE_LIMIT * a and d > 3.3 * rg:
            est = SizeEstimate(d, "shape-fit", n_inside, rg, d,
                               f"{why}, but the shape fit finds an elongated body (c/a = {c / a:.1f}) whose "
                               "extent 3.3 Rg undercuts")
        else:
            est = SizeEstimate(3.3 * rg, "guinier", n_inside, rg, d, why)
    else:
        d = shape_diameter(data)
        why = (f"only {n_inside} pixels inside the Guinier range (< {min_guinier_pixels})" if converged else
               "the Guinier fit did not settle (its window kept changing)")
        est = SizeEstimate(d, "shape-fit", n_inside, rg, d, f"{why}: the ellipsoid fit of the radial intensity decides")
    log.info("particle size %.1f Å by %s (%s)", est.diameter, est.method, est.reason)
    return est


def estimate_diameter(data: SPIData) -> float:
    """Particle diameter (Å) from the data: :func:`size_estimate`'s.

    With a Guinier range: 3.3 × the radius of gyration. A uniform sphere has D = 2.58 Rg;
    elongated or hollow particles have a larger ratio, and an underestimate is the costly error
    (the autocorrelation then aliases in the box), so the factor errs large. Without one: the
    shape fit (:func:`shape_diameter`).

    Parameters
    ----------
    data : SPIData

    Returns
    -------
    float
    """
    return size_estimate(data).diameter


MIN_GRID = 9  # phasing needs room for a support inside a box twice its size


def grid_size(resolution: float, box: float) -> int:
    """Odd grid size M (at least MIN_GRID) whose Nyquist limit M / (2L) reaches 1/resolution for box L."""
    m = max(int(math.ceil(2.0 * box / resolution)) + 1, MIN_GRID)
    return m if m % 2 == 1 else m + 1


FIXED_GENERATIONS = (4, 4, 3, 3, 2, 4)  # the fixed schedule's counts (`adaptive=False`)
MIN_GENERATIONS = (2, 2, 2, 2, 2, 4)
MAX_GENERATIONS = (4, 4, 4, 4, 6, 8)


def default_schedule(data: SPIData, diameter: float, *, adaptive: bool = True) -> tuple:
    """Coarse-to-fine stages sized from the data.

    Six stages, geometrically spaced from 40 Å (or 2.5× the data's corner resolution if that is
    coarser) down to the detector-corner resolution. References grow with resolution as
    ``100 (D / res)^1.6`` (slower than the (D / res)³ count of distinguishable orientations:
    each image's current orientation and its local perturbations compete too, see
    :class:`MTIPConfig`), between 500 and 4000.

    Adaptive (the default): stage k runs ``MIN_GENERATIONS[k]`` to ``MAX_GENERATIONS[k]``
    generations and ends when its orientations have settled (:func:`stage_decision`).
    ``adaptive=False``: the fixed counts ``FIXED_GENERATIONS`` (20 generations).

    Parameters
    ----------
    data : SPIData
    diameter : float
        Particle diameter (Å).
    adaptive : bool

    Returns
    -------
    tuple of Stage
    """
    diameter = ensure_real("diameter", diameter, low=0.0, low_open=True)
    final = 1.0 / data.s_max
    start = max(40.0, 2.5 * final)
    ratios = np.geomspace(start, final, len(FIXED_GENERATIONS))
    stages = []
    for k, res in enumerate(ratios):
        refs = int(np.clip(100 * (diameter / res) ** 1.6, 500, 4000))
        if adaptive:
            stages.append(Stage(float(res), MIN_GENERATIONS[k], refs, max_generations=MAX_GENERATIONS[k]))
        else:
            stages.append(Stage(float(res), FIXED_GENERATIONS[k], refs))
    return tuple(stages)


# --- convergence-driven stages --------------------------------------------------------------


def rotation_angles(q1, q2) -> np.ndarray:
    """Angle (degrees) of the rotation taking each quaternion of `q1` to the same row of `q2`.

    Parameters
    ----------
    q1, q2 : array (N, 4)
        Unit quaternions [w, x, y, z] (the sign of a row does not matter).

    Returns
    -------
    ndarray (N,)
    """
    a = np.asarray(q1, dtype=np.float64)
    b = np.asarray(q2, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 4 or a.shape != b.shape:
        raise ValueError(f"`q1` and `q2` must both have shape (N, 4), got {a.shape} and {b.shape}")
    dot = np.abs((a * b).sum(axis=1)) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.degrees(2.0 * np.arccos(np.clip(dot, 0.0, 1.0)))


def generation_metrics(before, after, *, resolution: float, diameter: float, settled_angle: float = 1.0,
                       score=None, previous_score=None, min_angle: float = 0.0) -> dict:
    """How far one generation moved the orientations: what :func:`stage_decision` reads.

    Parameters
    ----------
    before, after : array (N, 4)
        Each image's orientation before and after this generation's matching.
    resolution : float
        The stage's resolution limit (Å).
    diameter : float
        Particle diameter (Å); ``resolution / diameter`` radians is the stage's angular resolution.
    settled_angle : float
        "Settled" threshold in units of the angular resolution.
    score, previous_score : float, optional
        Mean score of this generation and of the previous one of the stage.
    min_angle : float
        Degrees; the settled threshold is at least this (the reconstruction passes 1.5 × its
        local refinement step: an image refined by one step is settling, not jumping).

    Returns
    -------
    dict
        ``moved_median_deg``, ``settled_angle_deg``, ``settled_fraction`` (share of images that
        moved by less than ``settled_angle_deg``) and ``score_change`` (relative change of the mean
        score, None without both scores).
    """
    resolution = ensure_real("resolution", resolution, low=0.0, low_open=True)
    diameter = ensure_real("diameter", diameter, low=0.0, low_open=True)
    moved = rotation_angles(before, after)
    thr = max(float(np.degrees(settled_angle * resolution / diameter)), float(min_angle))
    change = None
    if score is not None and previous_score is not None:
        change = float(abs(score - previous_score) / max(abs(previous_score), 1e-300))
    return {"moved_median_deg": float(np.median(moved)), "settled_angle_deg": thr,
            "settled_fraction": float((moved < thr).mean()), "score_change": change}


@dataclass(frozen=True)
class StageDecision:
    """What :func:`stage_decision` decided after a generation.

    Attributes
    ----------
    end : bool
        The stage ends with this generation.
    restart : bool
        ... and starts again from fresh random orientations and no model (a stage whose
        assignments stayed near-random).
    reason : str
        Why, in words (logged, and kept in the history as ``decision``).
    """

    end: bool
    restart: bool
    reason: str

    def to_dict(self) -> dict:
        """Plain dict of the fields."""
        return dataclasses.asdict(self)


def stage_decision(metrics: list, stage: Stage, criteria, *, generations_left: int, reserved: int = 0,
                   restarts_left: int = 0, final: bool = False, restart_room: int | None = None) -> StageDecision:
    """Whether a stage ends after its latest generation (and whether it restarts).

    A fixed stage (no ``max_generations``) ends after exactly ``generations``. An adaptive one:

    1. never before ``generations`` (its minimum), unless the budget is spent;
    2. ends as *settled* when, in the latest generation, at least ``criteria.settled_fraction`` of
       the images moved by less than the settled angle, or (not in the `final` stage, which
       makes the result) the mean score changed by less than ``criteria.score_tolerance`` while
       the median image moved less than the settled angle;
    3. never as settled while the median move exceeds ``criteria.unbroken_angle`` (assignments
       still near-random: it gets more generations);
    4. ends at ``max_generations``, or when the budget left (``generations_left``, counting
       this generation as done) is needed for the later stages' minima (`reserved`); ending
       there still unbroken, with `restarts_left` and room for another attempt, it restarts.

    Parameters
    ----------
    metrics : list of dict
        :func:`generation_metrics` of the stage's generations so far (this attempt), the latest
        last; a generation without matching (the very first) has ``moved_median_deg`` None.
    stage : Stage
    criteria : Convergence
    generations_left : int
        Generations the budget allows after this one.
    reserved : int
        Generations the later stages need at least.
    restarts_left : int
        Fresh random starts still allowed.
    final : bool
        This is the last stage: it ends as settled only by the settled share (a self-consistent
        but wrong assignment also stops changing the score).
    restart_room : int, optional
        Generations a fresh attempt could have (default ``generations_left - reserved``; more
        when a restart adds its generations to the budget); a restart needs the stage's minimum.

    Returns
    -------
    StageDecision
    """
    if not isinstance(stage, Stage):
        raise TypeError(f"`stage` must be a Stage, got {type(stage).__name__}")
    if not isinstance(metrics, (list, tuple)) or not metrics:
        raise ValueError("`metrics` must be a non-empty list of the stage's generation metrics")
    n = len(metrics)
    if not stage.adaptive:
        return StageDecision(n >= stage.generations, False, f"fixed stage: {stage.generations} generations")
    last = metrics[-1]
    moved = last.get("moved_median_deg")
    unbroken = moved is not None and moved > criteria.unbroken_angle
    spent = generations_left <= reserved
    at_max = n >= stage.max_generations
    if at_max or spent:
        why = (f"maximum of {stage.max_generations} generations" if at_max else
               f"budget: {max(generations_left, 0)} generations left, {reserved} needed by the later stages")
        room = (generations_left - reserved if restart_room is None else restart_room) >= stage.generations
        if unbroken and restarts_left > 0 and room:
            return StageDecision(True, True, f"{why}, orientations still near-random (median move {moved:.0f}° > "
                                             f"{criteria.unbroken_angle:.0f}°): fresh random start")
        state = (" unsettled" if moved is None or last["settled_fraction"] < criteria.settled_fraction else "")
        return StageDecision(True, False, why + state)
    if n < stage.generations or moved is None:
        return StageDecision(False, False, f"minimum of {stage.generations} generations not reached"
                             if n < stage.generations else "no matching yet")
    if unbroken:
        return StageDecision(False, False, f"median move {moved:.0f}° > {criteria.unbroken_angle:.0f}°: "
                                           "symmetry not broken yet")
    thr = last["settled_angle_deg"]
    if last["settled_fraction"] >= criteria.settled_fraction:
        return StageDecision(True, False, f"settled: {100 * last['settled_fraction']:.0f}% of images moved < "
                                          f"{thr:.1f}° (>= {100 * criteria.settled_fraction:.0f}%)")
    change = last.get("score_change")
    if not final and change is not None and change < criteria.score_tolerance and moved < thr:
        return StageDecision(True, False, f"settled: mean score changed {change:.1e} (< "
                                          f"{criteria.score_tolerance:.0e}), median move {moved:.1f}° < {thr:.1f}°")
    return StageDecision(False, False, f"{100 * last['settled_fraction']:.0f}% of images moved < {thr:.1f}°, "
                                       f"median move {moved:.1f}°")
