"""Acceptance on a CI-sized case: MTIP from random orientations reaches the detector's resolution.

2000 Poisson-noisy images of the built-in 570 kDa particle on the standard geometry (128² pixels
over 0.08 m at 0.2 m, 4600 eV), binned 2×2 and cropped to the central 32×32 binned pixels, which
puts the detector corner at 19.8 Å. The default reconstruction (schedule sized from the data,
random start) must reach FSC-0.5 ≤ 1.3× the corner resolution against the true density. About
two minutes on 2 cores; the full-detector figures are in the README and the demo's report.
A real structure (the 2CEX entry): with the true orientations held fixed the merge and phasing
must reach its corner (two seeds, under a minute); from random orientations it should come within 1.3× of
that ceiling, which it does only on some trajectories (an xfail, issue 13; two and a half minutes).
"""

import numpy as np
import pytest

from spkernels.geometry import Beam, Detector
from spkernels.mtip import demo_particle, simulate
from spkernels.mtip.reconstruct import MTIPConfig, SPIData, orientation_errors, reconstruct
from spkernels.mtip.resolution import resolution


@pytest.fixture(scope="module")
def cropped_standard_data():
    # Binned pixels of the standard detector are 1.25 mm; 32 of them span the central 0.04 m.
    det = Detector(32, 0.2, width=0.04)
    return simulate(2000, demo_particle(0), det, Beam(4600.0, 3e13, 5e-7), seed=1)


def test_reconstruction_from_random_orientations_reaches_the_corner_resolution(cropped_standard_data, capsys):
    ds = cropped_standard_data
    data = SPIData.from_dataset(ds)
    corner = 1.0 / data.s_max
    assert 19.0 < corner < 20.5
    result = reconstruct(data, MTIPConfig(seed=1), progress=False)
    # Random start: the first generation's orientations are as bad as random (~126° median).
    assert result.history[0]["median_orientation_error_deg"] > 90
    err = np.median(orientation_errors(result.orientations, data.orientations))
    rep = resolution(result.rho, result.voxel_size, ds.density, ds.voxel_size)
    with capsys.disabled():
        print(f"\nMTIP acceptance (CI size): FSC-0.5 {rep.resolution.angstrom:.2f} Å = "
              f"{rep.resolution.angstrom / corner:.2f}x corner {corner:.2f} Å; median orientation error {err:.2f}°")
    assert rep.resolution.reached
    assert rep.resolution.angstrom <= 1.3 * corner
    assert err < 10.0


@pytest.fixture(scope="module")
def cex():
    """2CEX data and its ceiling: the reconstruction with the true orientations held fixed.

    Phasing still stagnates now and then (issue 13): of 32 ceilings over four simulations and
    eight seeds each, 31 reached 13.1-14.6 Å and one 21.1 Å, its final Fourier error 0.0435
    against 0.035-0.038 for that simulation's other seeds. So, as a user would, the ceiling is
    run with two seeds and the one with the lower final Fourier error (never the truth) is kept.
    """
    from pathlib import Path

    pdb = Path(__file__).parent / "data" / "2cex.pdb"
    ds = simulate(1500, pdb, Detector(48, 0.2, width=0.06), Beam(4600.0, 3e14, 5e-7), seed=1)
    data = SPIData.from_dataset(ds)
    runs = [reconstruct(data, MTIPConfig(seed=s), progress=False, fixed_orientations=True) for s in (1, 2)]
    ceiling = min(runs, key=lambda r: r.history[-1]["phasing_error"])
    return ds, data, resolution(ceiling.rho, ceiling.voxel_size, ds.density, ds.voxel_size)


def test_real_structure_with_true_orientations_reaches_its_corner(cex):
    """The merge and phasing alone on 2CEX (orientations held at the truth): FSC-0.5 within 1.2x
    of the 13.2 Å corner (the fixture's spread: 13.1-14.6 Å, i.e. up to 1.11x, when phasing does
    not stagnate)."""
    ds, data, rep = cex
    assert rep.resolution.reached
    assert rep.resolution.angstrom <= 1.2 / data.s_max


@pytest.mark.xfail(strict=False, reason=(
    "known open defect, issue 13 (the acceptance this issue asks for is not met): from random "
    "orientations 2CEX reaches 1.3x of its ceiling only on some trajectories, and which one a "
    "machine follows depends on its rounding (CI: 24.5 A vs 13.7 A). The failures are "
    "self-consistent wrong models at a 4.5-5.5 deg median error, not unbroken symmetry; the "
    "ceiling half of this case is a hard test above"))
def test_real_structure_from_random_orientations_reaches_its_fixed_orientation_ceiling(cex, capsys):
    """2CEX (tests/data, a ~68 Å protein): 1500 images of 48² pixels of 1.25 mm at 0.2 m (corner
    13.2 Å, ~3500 photons per image). From random orientations the adaptive schedule must come
    within 1.3× of the FSC-0.5 the same data reach with the true orientations held fixed. The
    symmetry breaks late (at 16.5-13.2 Å: the 40-20 Å stages are 1.7-3.3 resolution elements
    across this particle), and the result depends on the trajectory (see the xfail reason):
    seeds 2-7 on this simulation gave 21.1, 14.4, 16.6, 24.5, 15.2 and 23.6 Å against a
    13.1-14.6 Å ceiling, at 5.1-7.8° median error whether they passed or failed (with measured
    FFT sizes); with the rule's sizes, as the suite now runs, seeds 1-4 gave 24.4, 26.6, 24.3 and
    15.8 Å. `starts` would not rescue this case: the good start had the highest final phasing
    error (docs/mtip_regimes.rst)."""
    ds, data, ceiling = cex
    corner = 1.0 / data.s_max
    ceil = ceiling.resolution.angstrom
    result = reconstruct(data, MTIPConfig(seed=1), progress=False)
    err = np.median(orientation_errors(result.orientations, data.orientations))
    rep = resolution(result.rho, result.voxel_size, ds.density, ds.voxel_size)
    with capsys.disabled():
        print(f"\nMTIP acceptance (2CEX, CI size): FSC-0.5 {rep.resolution.angstrom:.2f} Å from random orientations, "
              f"{ceil:.2f} Å with the true ones ({rep.resolution.angstrom / ceil:.2f}x; corner {corner:.2f} Å); "
              f"median orientation error {err:.2f}°; generations per stage "
              f"{[st['generations'] for st in result.stages]}")
    assert rep.resolution.reached
    assert rep.resolution.angstrom <= 1.3 * ceil
    assert err < 15.0
