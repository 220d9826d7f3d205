"""``mpiexec -n 2 spkernels mtip run config.toml``: images split over ranks, rank 0 writes,
the run equals the serial one to rounding, ``--resume`` after ``kill -9`` ends bitwise where an
uninterrupted MPI run ends, and a rank that fails aborts every rank within seconds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from _cli_data import CONFIG, spi_dataset

MPIEXEC = shutil.which("mpiexec")

pytestmark = [
    pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (install spkernels[mpi])"),
    pytest.mark.skipif("PMI_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ,
                       reason="already under mpiexec"),
]


def _env():
    from _subprocess import env as subprocess_env

    env = subprocess_env()
    env.setdefault("OMP_NUM_THREADS", "1")  # two ranks on a small machine
    env.setdefault("NUMBA_NUM_THREADS", "1")
    return env


def _mpi(args, *, timeout=120, cwd=None):
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "spkernels", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout, cwd=cwd)


def _state(path):
    import h5py

    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in ("rho", "ac", "orientations")}, int(f.attrs["generation"])


@pytest.fixture
def run_dir(tmp_path):
    pytest.importorskip("mpi4py")
    from spkernels.io import write_spi_h5

    write_spi_h5(tmp_path / "d.h5", spi_dataset(np.random.default_rng(7), n=16))
    return tmp_path


def test_mpi_run_matches_the_serial_run(run_dir):
    from spkernels import cli

    cfg = run_dir / "c.toml"
    cfg.write_text(CONFIG)  # two generations: the second matches (scale, floor, local candidates)
    assert cli.main(["mtip", "run", str(cfg), "-o", str(run_dir / "serial"), "--quiet"]) == 0
    proc = _mpi(["mtip", "run", str(cfg), "-o", str(run_dir / "mpi"), "--quiet"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("reconstruction of 16 images on 2 MPI ranks") == 1, proc.stdout  # rank 0 reports
    for name in ("density.mrc", "report.json", "checkpoint.h5"):
        assert (run_dir / "mpi" / name).stat().st_size > 0
    serial, _ = _state(run_dir / "serial" / "checkpoint.h5")
    mpi, gen = _state(run_dir / "mpi" / "checkpoint.h5")
    assert gen == 2
    np.testing.assert_array_equal(mpi["orientations"], serial["orientations"])
    for k in ("rho", "ac"):  # sums over ranks in another order: equal to rounding
        np.testing.assert_allclose(mpi[k], serial[k], rtol=0, atol=1e-11 * np.abs(serial[k]).max())


def test_mpi_resume_after_kill_is_bitwise(run_dir):
    cfg = run_dir / "c.toml"
    # Three generations: the kill comes once the first checkpoint exists, and on a loaded machine
    # the next generation may finish before it lands; any generation short of the last is mid-run.
    cfg.write_text(CONFIG.replace("generations = 2", "generations = 3"))
    full = _mpi(["mtip", "run", str(cfg), "-o", str(run_dir / "full"), "--quiet"])
    assert full.returncode == 0, full.stdout + full.stderr
    ref, gen = _state(run_dir / "full" / "checkpoint.h5")
    assert gen == 3

    out = run_dir / "cut"
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "spkernels", "mtip", "run", str(cfg), "-o", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    t0 = time.monotonic()
    while not (out / "checkpoint.h5").exists() and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # mpiexec and both ranks, mid-run
    proc.wait()
    _, gen = _state(out / "checkpoint.h5")
    assert gen in (1, 2)  # killed mid-run
    resumed = _mpi(["mtip", "run", str(cfg), "-o", str(out), "--quiet", "--resume"])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    got, gen_end = _state(out / "checkpoint.h5")
    assert gen_end == 3
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k])


def test_a_failing_rank_aborts_every_rank(run_dir):
    # Rank 1 fails while rank 0 waits in a collective it would never leave.
    script = """
import sys
from spkernels import cli
import spkernels.mtip.cli as mc

def boom(args):
    comm = cli.mpi_world()
    args.comm = comm
    if comm.Get_rank() == 1:
        raise ValueError("`boom` rank 1 cannot go on")
    comm.Barrier()
    return 0

mc._cmd_run = boom
sys.exit(cli.main(["mtip", "run", "unused.toml"]))
"""
    (run_dir / "boom.py").write_text(script)
    t0 = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(run_dir / "boom.py")], capture_output=True,
                          text=True, env=_env(), timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "spkernels: error (rank 1 of 2): `boom` rank 1 cannot go on" in proc.stderr, proc.stderr
    assert elapsed < 30, elapsed
