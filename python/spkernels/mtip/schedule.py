"""The coarse-to-fine schedule: particle size from the data (Guinier), grid sizes, default stages."""

from __future__ import annotations

import logging
import math

import numpy as np

from .config import Stage
from .data import SPIData

log = logging.getLogger("spkernels.mtip.schedule")


def radius_of_gyration(data: SPIData) -> float:
    """Guinier radius of gyration (Å) from the low-|s| fall-off of the mean image.

    ``ln I(s) ≈ ln I0 − (4π²/3) Rg² |s|²`` holds for ``2π |s| Rg < 1.3``; the fit window is
    narrowed iteratively to that range.
    """
    w = data.pixel_weights()
    r = np.linalg.norm(data.s, axis=1)
    mean_img = data.intensities.mean(axis=0)
    usable = (w > 0) & (r > 0) & (mean_img > 0)
    if usable.sum() < 4:
        raise ValueError("too few unmasked low-resolution pixels with photons to estimate the particle size")
    rg = 0.5 / np.sort(r[usable])[min(8, usable.sum() - 1)]  # start wide: a few innermost pixels
    for _ in range(10):
        sel = usable & (2 * np.pi * r * rg < 1.3)
        if sel.sum() < 4:
            # Usual for SPI detectors (no pixel that close to the beam for a large particle); the
            # 3.3 factor of estimate_diameter covers the bias of fitting slightly beyond the range.
            log.info("only %d pixels inside the Guinier range: fitting the 4 innermost instead "
                     "(set `particle_diameter` if you know it)", int(sel.sum()))
            sel = usable & (r <= np.sort(r[usable])[3])
        a = np.stack([np.ones(sel.sum()), -(4 * np.pi**2 / 3) * r[sel] ** 2], axis=1)
        coef, *_ = np.linalg.lstsq(a, np.log(mean_img[sel]), rcond=None)
        new = float(np.sqrt(max(coef[1], 1e-12)))
        if abs(new - rg) < 1e-3 * rg:
            rg = new
            break
        rg = new
    return rg


def estimate_diameter(data: SPIData) -> float:
    """Particle diameter (Å) estimated as 3.3 × the Guinier radius of gyration.

    A uniform sphere has D = 2.58 Rg; elongated or hollow particles have a larger ratio, and an
    underestimate is the costly error (the autocorrelation then aliases in the box), so the
    factor errs large.
    """
    return 3.3 * radius_of_gyration(data)


MIN_GRID = 9  # phasing needs room for a support inside a box twice its size


def grid_size(resolution: float, box: float) -> int:
    """Odd grid size M (at least MIN_GRID) whose Nyquist limit M / (2L) reaches 1/resolution for box L."""
    m = max(int(math.ceil(2.0 * box / resolution)) + 1, MIN_GRID)
    return m if m % 2 == 1 else m + 1


def default_schedule(data: SPIData, diameter: float) -> tuple:
    """Coarse-to-fine stages sized from the data.

    Six stages, geometrically spaced from 40 Å (or 2.5× the data's corner resolution if that is
    coarser) down to the detector-corner resolution, which gets the most generations. References
    grow with resolution as ``100 (D / res)^1.6`` (slower than the (D / res)³ count of
    distinguishable orientations: each image's current orientation and its local perturbations
    compete too, see :class:`MTIPConfig`), between 500 and 4000.
    """
    final = 1.0 / data.s_max
    start = max(40.0, 2.5 * final)
    n = 6
    ratios = np.geomspace(start, final, n)
    gens = [4, 4, 3, 3, 2, 4]
    stages = []
    for res, g in zip(ratios, gens):
        refs = int(np.clip(100 * (diameter / res) ** 1.6, 500, 4000))
        stages.append(Stage(resolution=float(res), generations=g, n_references=refs))
    return tuple(stages)
