"""Small inputs for the command-line tests: a random SPI data set and a short MTIP config."""

from __future__ import annotations

import numpy as np

from spkernels.io import SPIDataset

CONFIG = """
[run]
input = "d.h5"
output = "out"
[mtip]
seed = 1
cg_maxiter = 5
particle_diameter = 190.0
[mtip.phasing]
n_loops = 1
er_before = 4
hio = 4
er_after = 4
final_er = 4
[[mtip.stages]]
resolution = 40.0
generations = 2
n_references = 30
"""


def spi_dataset(rng, n=12, px=12):
    """Random photon counts (never zero-mean) on a small flat detector, s up to ~1/40 Å⁻¹ (in 1/m)."""
    u = (np.arange(px) - (px - 1) / 2) / px * 5e8
    sx, sy = np.meshgrid(u, u, indexing="ij")
    ppr = np.stack([sx, sy, 1e6 * (sx**2 + sy**2) / 1e18], axis=-1)[None]
    counts = rng.poisson(5.0 + 20.0 * np.exp(-(sx**2 + sy**2) / 4e16), (n, 1, px, px)).astype(np.float64)
    return SPIDataset(intensities=counts, pixel_position_reciprocal=ppr)
