"""Acceptance on a CI-sized case: MTIP from random orientations reaches the detector's resolution.

2000 Poisson-noisy images of the built-in 570 kDa particle on the standard geometry (128² pixels
over 0.08 m at 0.2 m, 4600 eV), binned 2×2 and cropped to the central 32×32 binned pixels, which
puts the detector corner at 19.8 Å. The default reconstruction (schedule sized from the data,
random start) must reach FSC-0.5 ≤ 1.3× the corner resolution against the true density. About
a minute on 2 cores; the full-detector figures are in the README and the demo's report.
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
