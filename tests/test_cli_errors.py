"""Bad input to ``spkernels mtip run``: one line naming the file and the field, exit code 2,
no traceback unless ``--debug``, nothing written; checkpoints of other data or settings, or
damaged ones, are refused before anything runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from spkernels import cli
from spkernels.io import write_spi_h5
from spkernels.mtip import checkpoint as ckpt
from spkernels.mtip.cli import load_run_data, read_run_config

from _cli_data import CONFIG, spi_dataset  # noqa: E402



@pytest.fixture
def run_dir(tmp_path, rng):
    write_spi_h5(tmp_path / "d.h5", spi_dataset(rng))
    (tmp_path / "c.toml").write_text(CONFIG)
    return tmp_path


def _fake_checkpoint(run_dir, path, *, generation=1):
    """A valid checkpoint of run_dir's data and settings, written without running MTIP."""
    run, cfg = read_run_config(run_dir / "c.toml")
    _, data = load_run_data(run_dir / "d.h5")
    rng = np.random.default_rng(0)
    M = 8
    q = rng.standard_normal((data.n_images, 4))
    state = {"generation": generation, "n_images": data.n_images, "M": M,
             "rng_state": np.random.default_rng(3).bit_generator.state,
             "history": [{"generation": g} for g in range(generation)],
             "orientations": q / np.linalg.norm(q, axis=1, keepdims=True),
             "rho": rng.random((M, M, M)), "ac": rng.random((M, M, M))}
    ckpt.save(path, state, cfg, voxel_size=5.0, data=data)
    return cfg, data


def _fails(capsys, argv, *expected):
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def _edit(run_dir, old, new):
    text = (run_dir / "c.toml").read_text()
    assert old in text
    (run_dir / "c.toml").write_text(text.replace(old, new, 1))
    return str(run_dir / "c.toml")


@pytest.mark.parametrize("old, new, expected", [
    ("generations = 2", "generations = 1.5", "`stages[0].generations` must be an integer, got float 1.5"),
    ("generations = 2", 'generations = "2"', "`stages[0].generations` must be an integer, got str"),
    ("generations = 2", "generations = 0", "`stages[0].generations` must be in [1, 1000000], got 0"),
    ("n_references = 30", "n_references = 30\nn_refs = 3", "unknown key in `stages[0]`: n_refs"),
    ("hio = 4", "hoi = 4", "unknown key in `phasing`: hoi"),
    ("hio = 4", 'hio = "4"', "`phasing.hio` must be an integer"),
    ("seed = 1", "sed = 1", "unknown MTIP settings: sed"),
    ("cg_maxiter = 5", "cg_maxiter = -5", "`cg_maxiter` must be in [1, 1000000], got -5"),
    ("cg_maxiter = 5", 'eps = "1e-4"', "`eps` must be a real number"),
    ('output = "out"', "n_images = -10", "[run] `n_images` must be >= 1, got -10"),
    ('output = "out"', "n_images = 0", "[run] `n_images` must be >= 1, got 0"),
    ('output = "out"', "n_images = 1000", "fewer than [run] `n_images` = 1000"),
    ('output = "out"', "n_images = true", "[run] `n_images` must be an integer"),
    ('output = "out"', "outptu = 3", "unknown [run] setting outptu"),
    ('output = "out"', "output = 3", "[run] `output` must be a non-empty string"),
    ('input = "d.h5"', 'input = "missing.h5"', "missing.h5: no such input file"),
    ('input = "d.h5"', "", "[run] needs `input`"),
    ("[run]", "[runs]", "unknown table or key runs"),
    ("seed = 1", "seed = [1", "not valid TOML"),
])
def test_config_errors_are_one_line_naming_the_field(run_dir, capsys, old, new, expected):
    (run_dir / "out").mkdir()
    (run_dir / "out" / "report.json").write_text("OLD")
    line = _fails(capsys, ["mtip", "run", _edit(run_dir, old, new), "--quiet"], expected)
    assert any(name in line for name in ("c.toml", "d.h5", "missing.h5"))  # the file at fault
    # nothing written over existing outputs, nothing new
    assert sorted(os.listdir(run_dir / "out")) == ["report.json"]
    assert (run_dir / "out" / "report.json").read_text() == "OLD"


def test_missing_config_file(tmp_path, capsys):
    _fails(capsys, ["mtip", "run", str(tmp_path / "nope.toml")], "nope.toml: no such config file")


def test_bad_input_files(run_dir, capsys, rng):
    cfg = str(run_dir / "c.toml")
    ds = spi_dataset(rng)
    ds.intensities[3, 0, 2, 2] = np.nan
    write_spi_h5(run_dir / "d.h5", ds)
    _fails(capsys, ["mtip", "run", cfg], "d.h5: `intensities` contains NaN or Inf")
    import h5py

    write_spi_h5(run_dir / "d.h5", spi_dataset(rng))
    with h5py.File(run_dir / "d.h5", "a") as f:
        del f["pixel_position_reciprocal"]
    _fails(capsys, ["mtip", "run", cfg], "d.h5: cannot be read as SPI data", "pixel_position_reciprocal")
    (run_dir / "d.h5").write_bytes(rng.bytes(3000))
    _fails(capsys, ["mtip", "run", cfg], "d.h5: cannot be read as SPI data")


def test_damaged_checkpoints_are_refused_naming_the_file(run_dir, capsys):
    good = run_dir / "out" / "checkpoint.h5"
    good.parent.mkdir()
    _fake_checkpoint(run_dir, good, generation=2)
    cfg = str(run_dir / "c.toml")
    argv = ["mtip", "run", cfg, "--quiet", "--resume"]
    saved = good.read_bytes()

    good.write_bytes(saved[: len(saved) // 2])  # truncated
    _fails(capsys, argv, "checkpoint.h5", "truncated or corrupted")
    good.write_bytes(np.random.default_rng(1).bytes(len(saved)))  # random bytes
    _fails(capsys, argv, "checkpoint.h5", "not a readable HDF5 file")

    import h5py

    good.write_bytes(saved)
    with h5py.File(good, "a") as f:
        f.attrs["generation"] = 999
    _fails(capsys, argv, "checkpoint.h5", "`generation` = 999 does not match the 2 generations in `history`")
    good.write_bytes(saved)
    with h5py.File(good, "a") as f:
        del f["rho"]
    _fails(capsys, argv, "checkpoint.h5", "missing dataset `rho`")
    good.write_bytes(saved)
    with h5py.File(good, "a") as f:
        f.attrs["format"] = "something else"
    _fails(capsys, argv, "checkpoint.h5", "not an spkernels MTIP checkpoint")

    good.unlink()
    _fails(capsys, argv, "checkpoint.h5", "--resume needs this checkpoint")


def test_checkpoint_of_other_data_or_settings_is_refused(run_dir, capsys, rng):
    good = run_dir / "out" / "checkpoint.h5"
    good.parent.mkdir()
    _fake_checkpoint(run_dir, good)
    cfg = str(run_dir / "c.toml")
    argv = ["mtip", "run", cfg, "--quiet", "--resume"]
    saved = good.read_bytes()
    # The same number of images, other counts: the data fingerprint differs.
    write_spi_h5(run_dir / "d.h5", spi_dataset(np.random.default_rng(99)))
    _fails(capsys, argv, "checkpoint.h5", "was written for other data", "`data_sha256`")
    assert good.read_bytes() == saved  # not touched
    shutil.copy(run_dir / "d.h5", run_dir / "other.h5")
    # Same data as the checkpoint, other settings.
    _fake_checkpoint(run_dir, good)
    _edit(run_dir, "cg_maxiter = 5", "cg_maxiter = 6")
    _fails(capsys, argv, "checkpoint.h5", "different settings: cg_maxiter")


def test_checkpoint_load_accepts_its_own_file(run_dir):
    path = run_dir / "ck.h5"
    cfg, data = _fake_checkpoint(run_dir, path, generation=1)
    st = ckpt.load(path, cfg, data=data)
    assert st["generation"] == 1 and st["data_sha256"] == ckpt.data_fingerprint(data)
    assert len(ckpt.config_fingerprint(cfg)) == 64


def test_exit_code_and_debug_in_a_real_process(run_dir):
    cfg = _edit(run_dir, "generations = 2", "generations = 1.5")
    from _subprocess import env as subprocess_env

    env = subprocess_env()
    cmd = [sys.executable, "-m", "spkernels", "mtip", "run", cfg]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("spkernels: error: ") and "stages[0].generations" in proc.stderr
    proc = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "stages[0].generations" in proc.stderr


def test_a_missing_optional_package_is_a_one_line_error_with_its_install_hint(tmp_path):
    """Without PyTorch (blocked in the child), `hits train` says how to install it: exit 2, one
    line, not an "internal error" with a pointer to --debug."""
    import textwrap

    from _subprocess import env as subprocess_env

    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # import torch now raises ImportError
        from spkernels.cli import main
        sys.exit(main(["hits", "train", {str(tmp_path / 'none.h5')!r}, "-o", {str(tmp_path / 'm.pt')!r}]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("spkernels: error: ") and 'pip install "spkernels[ml]"' in proc.stderr
    assert "internal error" not in proc.stderr and "--debug" not in proc.stderr


def test_run_with_starts_resumes_and_reports_them(run_dir, capsys):
    """[mtip] starts = 2: a checkpoint per start, --resume accepts them (and still refuses a
    start's file written with other settings), the report names the start kept."""
    cfg = _edit(run_dir, "seed = 1", "seed = 1\nstarts = 2")
    assert cli.main(["mtip", "run", cfg, "--quiet"]) == 0
    out = run_dir / "out"
    assert (out / "checkpoint.start0.h5").exists() and (out / "checkpoint.start1.h5").exists()
    report = (out / "report.md").read_text()
    assert "2 starts, the lowest final phasing error kept: seed 1: " in report and "(kept)" in report
    assert cli.main(["mtip", "run", cfg, "--quiet", "--resume"]) == 0
    capsys.readouterr()
    _edit(run_dir, "seed = 1", "seed = 3")  # start 0 would now be seed 3: its file is not that run's
    assert cli.main(["mtip", "run", cfg, "--quiet", "--resume"]) == 2
    assert "checkpoint.start0.h5: was written with different settings: seed" in capsys.readouterr().err
    (out / "checkpoint.start0.h5").unlink()
    (out / "checkpoint.start1.h5").unlink()
    assert cli.main(["mtip", "run", cfg, "--quiet", "--resume"]) == 2
    assert "checkpoint.start0.h5: --resume needs this checkpoint" in capsys.readouterr().err
