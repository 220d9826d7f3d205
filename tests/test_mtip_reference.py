"""``spkernels mtip run --reference``: the FSC of data that hold no density, against a PDB/mmCIF
model or an MRC map, and clear errors for references that cannot be used."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from _cli_data import CONFIG
from _data import DATA

from spkernels import cli
from spkernels.geometry import Beam, Detector
from spkernels.io import write_mrc, write_spi_h5
from spkernels.mtip import simulate
from spkernels.mtip.cli import load_reference


@pytest.fixture(scope="module")
def pdb(tmp_path_factory):
    return DATA / "2cex.pdb"


@pytest.fixture
def run_dir(tmp_path, pdb):
    # 2CEX simulated without its density: the file holds images only, like skopi's
    ds = simulate(24, pdb, Detector(16, 0.2, width=0.08), Beam(4600.0, 1e15, 1e-7), seed=3, density_grid=None)
    assert ds.density is None
    write_spi_h5(tmp_path / "d.h5", ds)
    (tmp_path / "c.toml").write_text(CONFIG.replace("particle_diameter = 190.0", "particle_diameter = 80.0"))
    return tmp_path


def _report(out):
    return json.loads((out / "report.json").read_text())


def test_reference_model_and_map_give_the_fsc(run_dir, pdb, capsys):
    assert cli.main(["mtip", "run", str(run_dir / "c.toml"), "-o", str(run_dir / "none"), "--quiet"]) == 0
    assert "fsc_resolution_angstrom" not in _report(run_dir / "none")  # nothing to compare against
    assert cli.main(["mtip", "run", str(run_dir / "c.toml"), "-o", str(run_dir / "pdb"), "--quiet",
                     "--reference", str(pdb)]) == 0
    rep = _report(run_dir / "pdb")
    assert rep["fsc_resolution_angstrom"] > 0 and (run_dir / "pdb" / "fsc.png").stat().st_size > 0
    # The same reference as an MRC map, named in the config's [run] table (relative to it).
    from spkernels.io import read_spi_h5

    s_max = float(np.linalg.norm(read_spi_h5(run_dir / "d.h5").s_vectors.reshape(-1, 3), axis=1).max())
    rho, voxel = load_reference(pdb, s_max)
    assert rho.ndim == 3 and rho.shape[0] % 2 == 1 and voxel == pytest.approx(1 / (2 * s_max))
    write_mrc(run_dir / "ref.mrc", rho.astype(np.float32), voxel)
    text = (run_dir / "c.toml").read_text().replace('output = "out"', 'output = "out"\nreference = "ref.mrc"')
    (run_dir / "c2.toml").write_text(text)
    assert cli.main(["mtip", "run", str(run_dir / "c2.toml"), "-o", str(run_dir / "mrc"), "--quiet"]) == 0
    # float32 rounding of the map aside, the two references are one density
    assert _report(run_dir / "mrc")["fsc_resolution_angstrom"] == pytest.approx(rep["fsc_resolution_angstrom"],
                                                                                 rel=0.05)


def test_bad_references_are_one_line_errors(run_dir, capsys):
    def fails(ref, *expected):
        code = cli.main(["mtip", "run", str(run_dir / "c.toml"), "-o", str(run_dir / "x"), "--quiet",
                         "--reference", str(ref)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        for text in expected:
            assert text in err, err
        assert not (run_dir / "x").exists()  # nothing ran, nothing written

    fails(run_dir / "missing.pdb", "missing.pdb", "no such reference")
    shutil.copy(run_dir / "c.toml", run_dir / "ref.txt")
    fails(run_dir / "ref.txt", "ref.txt", "MRC map", "PDB/mmCIF")
    (run_dir / "broken.mrc").write_bytes(b"not a map")
    fails(run_dir / "broken.mrc", "broken.mrc", "cannot be read")
    import mrcfile

    with mrcfile.new(run_dir / "novoxel.mrc") as m:  # a header without a voxel size (as some tools write)
        m.set_data(np.random.default_rng(0).random((9, 9, 9)).astype(np.float32))
    fails(run_dir / "novoxel.mrc", "novoxel.mrc", "voxel size")


def test_binning_on_reading(tmp_path, rng):
    from _cli_data import spi_dataset

    from spkernels.io import read_spi_h5

    ds = spi_dataset(rng, n=5, px=12)
    ds.mask = (rng.random(ds.det_shape) > 0.1).astype(np.float64)
    write_spi_h5(tmp_path / "d.h5", ds)
    full = read_spi_h5(tmp_path / "d.h5")
    two = read_spi_h5(tmp_path / "d.h5", binning=2)
    assert two.det_shape == (1, 6, 6) and two.attrs["binning"] == 2
    blocks = full.intensities.reshape(5, 1, 6, 2, 6, 2)
    np.testing.assert_allclose(two.intensities, blocks.sum(axis=(3, 5)))  # photons add
    np.testing.assert_allclose(two.pixel_position_reciprocal,
                               full.pixel_position_reciprocal.reshape(1, 6, 2, 6, 2, 3).mean(axis=(2, 4)))
    valid = (full.mask.reshape(1, 6, 2, 6, 2) > 0).all(axis=(2, 4))
    np.testing.assert_array_equal(two.mask > 0, valid)  # partly masked blocks are masked
    five = read_spi_h5(tmp_path / "d.h5", binning=5)  # 12 = 2 x 5 + 2: the last 2 rows/columns go
    assert five.det_shape == (1, 2, 2)
    np.testing.assert_allclose(five.intensities, full.intensities[..., :10, :10].reshape(5, 1, 2, 5, 2, 5).sum(axis=(3, 5)))
    with pytest.raises(ValueError, match="`binning`"):
        read_spi_h5(tmp_path / "d.h5", binning=0)
    with pytest.raises(ValueError, match="`binning`"):
        read_spi_h5(tmp_path / "d.h5", binning=13)
    # [run] binning: the run reconstructs from the binned pixels
    (tmp_path / "c.toml").write_text(CONFIG.replace('output = "out"', 'output = "out"\nbinning = 2'))
    assert cli.main(["mtip", "run", str(tmp_path / "c.toml"), "--quiet"]) == 0
    (tmp_path / "bad.toml").write_text(CONFIG.replace('output = "out"', 'output = "out"\nbinning = 0'))
    assert cli.main(["mtip", "run", str(tmp_path / "bad.toml"), "--quiet"]) == 2
