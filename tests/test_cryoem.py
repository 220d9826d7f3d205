"""spkernels.cryoem end to end on CI-sized cases: CTF, Euler angles, STAR + MRC I/O (RELION
layouts), simulate → reconstruct → FSC against the truth and between half maps, alignment, the
CLI, and bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest

from spkernels import cryoem
from spkernels.kernels import fsc

def test_ctf_conventions():
    c = cryoem.CTF(defocus_u=15000.0, defocus_v=14000.0, defocus_angle=30.0)
    img = c.image(64, 2.0)
    assert img.shape == (64, 64)
    q0 = 0.1
    assert img[32, 32] == pytest.approx(q0, rel=1e-9)  # -sin(-atan(Q0/sqrt(1-Q0²))) = Q0
    assert np.all(np.abs(img) <= 1.0 + 1e-12)
    # astigmatism: the zero crossings sit at different radii along the two axes
    lam = cryoem.electron_wavelength(300.0)
    assert lam == pytest.approx(0.019687, rel=1e-4)
    # first zero along the major axis (Cs negligible at low s): π λ U s² ≈ atan(Q0/√(1-Q0²))... + π
    s = np.linspace(0, 0.1, 40001)
    along_u = cryoem.CTF(15000.0, 15000.0)(s, 0 * s)
    first_zero = s[np.argmax(along_u < 0)]
    k3 = np.arctan(q0 / np.sqrt(1 - q0 * q0))
    assert first_zero == pytest.approx(np.sqrt((np.pi - k3) / (np.pi * lam * 15000.0)), rel=2e-3)
    with pytest.raises(ValueError, match="amplitude_contrast"):
        cryoem.CTF(1e4, 1e4, amplitude_contrast=1.5)
    with pytest.raises(ValueError, match="defocus_u"):
        cryoem.CTF(float("nan"), 1e4)
    # phase flipping makes every CTF positive; Wiener filtering inverts it where it is strong
    rng = np.random.default_rng(0)
    im = rng.standard_normal((2, 64, 64))
    flipped = cryoem.phase_flip(im, np.stack([img, img]))
    assert flipped.shape == im.shape and np.isfinite(flipped).all()
    w = cryoem.wiener_filter(im, np.stack([img, img]), snr=1e6)
    back = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(w, axes=(-2, -1))), axes=(-2, -1)) * img
    orig = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(im, axes=(-2, -1))), axes=(-2, -1))
    strong = np.abs(img) > 0.3
    strong[0, :] = strong[:, 0] = False  # the Nyquist row and column have no Hermitian mate
    assert np.allclose(back[:, strong], orig[:, strong], rtol=1e-4, atol=1e-6)


def test_euler_round_trip(rng):
    ang = np.stack([rng.uniform(-180, 180, 50), rng.uniform(1, 179, 50), rng.uniform(-180, 180, 50)], 1)
    m = cryoem.euler_to_matrix(ang[:, 0], ang[:, 1], ang[:, 2])
    assert np.allclose(np.einsum("nij,nkj->nik", m, m), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)
    back = cryoem.euler_to_matrix(*cryoem.matrix_to_euler(m).T)
    assert np.allclose(back, m, atol=1e-10)
    # RELION: tilt 90°, rot 0, psi 0 views along x: pixel u lies on -z... A row 0 is (0, 0, -1)
    a = cryoem.euler_to_matrix(0.0, 90.0, 0.0)[0]
    assert np.allclose(a[0], [0, 0, -1], atol=1e-12) and np.allclose(a[2], [1, 0, 0], atol=1e-12)
    flat = cryoem.euler_to_matrix([30.0, 30.0], [0.0, 180.0], [0.0, 0.0])
    assert np.allclose(cryoem.euler_to_matrix(*cryoem.matrix_to_euler(flat).T), flat, atol=1e-10)


_RELION_STAR = """
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
_rlnVoltage #4
_rlnSphericalAberration #5
_rlnAmplitudeContrast #6
_rlnImagePixelSize #7
_rlnImageSize #8
_rlnImageDimensionality #9
opticsGroup1            1     1.060000   300.000000     2.700000     0.100000     3.540000           16            2
opticsGroup2            2     1.060000   200.000000     2.000000     0.070000     3.540000           16            2


# version 30001

data_particles

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnImageName #3
_rlnMicrographName #4
_rlnOpticsGroup #5
_rlnAngleRot #6
_rlnAngleTilt #7
_rlnAnglePsi #8
_rlnOriginXAngst #9
_rlnOriginYAngst #10
_rlnDefocusU #11
_rlnDefocusV #12
_rlnDefocusAngle #13
_rlnCtfBfactor #14
_rlnCtfScalefactor #15
_rlnPhaseShift #16
{rows}
"""


def _relion_files(tmp_path, rng, subset):
    import mrcfile

    n = 5
    stack = rng.standard_normal((n, 16, 16)).astype(np.float32)
    with mrcfile.new(tmp_path / "Extract" / "job007" / "mic1.mrcs" if False else tmp_path / "mic1.mrcs") as m:
        m.set_data(stack)
    rows = []
    for i in range(n):
        rows.append(f"1000.0 2000.0 {i + 1:06d}@mic1.mrcs MotionCorr/job002/mic1.mrc {1 + i % 2} "
                    f"{10.0 * i:.3f} {20.0 + i:.3f} {-5.0 * i:.3f} 1.25 -2.5 {15000 + 100 * i}.0 14800.0 33.3 0.0 "
                    f"1.0 0.0")
    text = _RELION_STAR.format(rows="\n".join(rows))
    if subset:
        text = text.replace("_rlnPhaseShift #16\n", "_rlnPhaseShift #16\n_rlnRandomSubset #17\n")
        lines = text.split("\n")
        lines = [ln + f" {1 + k % 2}" if "@mic1.mrcs" in ln else ln
                 for k, ln in enumerate(lines)]
        text = "\n".join(lines)
    (tmp_path / "particles.star").write_text(text)
    return stack


@pytest.mark.parametrize("subset", [False, True])
def test_read_relion_layout(tmp_path, rng, subset):
    stack = _relion_files(tmp_path, rng, subset)
    p = cryoem.read_relion(tmp_path / "particles.star")
    assert len(p) == 5 and p.box == 16 and p.pixel_size == pytest.approx(3.54)
    assert np.array_equal(p.images, stack)
    assert np.allclose(p.voltage, [300, 200, 300, 200, 300]) and np.allclose(p.cs, [2.7, 2.0, 2.7, 2.0, 2.7])
    assert np.allclose(p.euler(), [[10.0 * i, 20.0 + i, -5.0 * i] for i in range(5)], atol=1e-9)
    assert np.allclose(p.shifts, [[1.25, -2.5]] * 5)
    assert (p.subset is not None) == subset
    # write and read back: the same particles
    cryoem.write_relion(tmp_path / "out.star", p)
    q = cryoem.read_relion(tmp_path / "out.star")
    assert np.array_equal(q.images, p.images)
    assert np.allclose(q.rotations, p.rotations, atol=1e-5)
    for f in ("shifts", "defocus_u", "defocus_v", "defocus_angle", "voltage", "cs", "amplitude_contrast"):
        assert np.allclose(getattr(q, f), getattr(p, f), atol=1e-5), f


def test_relion_bad_files(tmp_path, rng):
    _relion_files(tmp_path, rng, False)
    text = (tmp_path / "particles.star").read_text()
    (tmp_path / "nodefocus.star").write_text(text.replace("_rlnDefocusU #11", "_rlnSomethingElse #11"))
    with pytest.raises(ValueError, match="rlnDefocusU"):
        cryoem.read_relion(tmp_path / "nodefocus.star")
    (tmp_path / "long.star").write_text(text.replace("000005@mic1.mrcs", "000009@mic1.mrcs"))
    with pytest.raises(ValueError, match="holds only 5 images"):
        cryoem.read_relion(tmp_path / "long.star")
    (tmp_path / "ragged.star").write_text(text.replace(" 33.3 0.0 1.0 0.0", " 33.3 0.0", 1))
    with pytest.raises(ValueError, match="values for 16 columns"):
        cryoem.read_relion(tmp_path / "ragged.star")


def test_particle_set_bad_input(rng):
    n = 3
    good = dict(images=rng.standard_normal((n, 8, 8)), pixel_size=2.0, rotations=np.tile(np.eye(3), (n, 1, 1)),
                shifts=np.zeros((n, 2)), defocus_u=1e4, defocus_v=1e4, defocus_angle=0.0, voltage=300.0, cs=2.7,
                amplitude_contrast=0.1, bfactor=0.0, phase_shift=0.0)
    cryoem.ParticleSet(**good)
    for key, val, word in (("images", rng.standard_normal((n, 8, 6)), "square"),
                           ("rotations", np.zeros((n, 3)), "rotations"),
                           ("defocus_u", np.array([1.0, np.nan, 2.0]), "defocus_u"),
                           ("shifts", np.zeros((n + 1, 2)), "shifts")):
        bad = dict(good)
        bad[key] = val
        with pytest.raises(ValueError, match=word):
            cryoem.ParticleSet(**bad)
    bad = dict(good)
    bad["images"] = good["images"].copy()
    bad["images"][1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="images"):
        cryoem.ParticleSet(**bad)


@pytest.fixture(scope="module")
def views1500(ribosome32):
    return cryoem.simulate(ribosome32, 1500, voxel_size=10.0, ctf=False, seed=11)


@pytest.mark.parametrize("backend", ["cpu", "numba-cpu"])
def test_reconstruct_1500_views_matches_truth(ribosome32, views1500, backend):
    """The torch-fourier-slice case: 32³, 1500 random views, noiseless, known poses."""
    from spkernels import backends

    if not backends.is_available(backend):
        pytest.skip(f"backend {backend!r} unavailable: {backends._why_unavailable(backend)}")
    p = views1500
    rec = cryoem.reconstruct_fourier(p, ctf=False, backend=backend)
    r = fsc(rec.volume.astype(np.float64), ribosome32, voxel_size=10.0)
    upto = r.frequency <= 0.9 * 0.5 / 10.0
    assert r.fsc[upto].min() > 0.99, np.round(r.fsc, 4)
    assert (rec.volume * ribosome32).sum() / (ribosome32 ** 2).sum() == pytest.approx(1.0, abs=0.02)


def test_shifts_and_ctf_round_trip(ribosome32, tmp_path):
    """CTF, origins and the STAR + MRC round trip: the map comes back through a file."""
    p = cryoem.simulate(ribosome32, 800, voxel_size=10.0, shifts=15.0, seed=5, defocus=(10000.0, 30000.0),
                        output=tmp_path / "sim.star")
    q = cryoem.read_relion(tmp_path / "sim.star")
    assert len(q) == len(p) and np.array_equal(q.subset, p.subset)
    rec = cryoem.reconstruct_fourier(q)
    r = fsc(rec.volume.astype(np.float64), ribosome32, voxel_size=10.0, mask=cryoem.soft_sphere(32))
    # CTF zeros leave only the Wiener-weighted sum; noiseless, it still matches the truth closely
    upto = r.frequency <= 0.8 * 0.05
    assert r.fsc[upto].min() > 0.95, np.round(r.fsc, 3)


def test_half_maps_with_noise(ribosome32):
    p = cryoem.simulate(ribosome32, 1000, voxel_size=10.0, snr=0.1, seed=7)
    hm = cryoem.reconstruct_half_maps(p)
    res = hm.resolution
    assert res.reached and 20.0 < res.angstrom < 60.0, str(res)
    assert hm.fsc.fsc[1:4].min() > 0.9  # low frequencies are well above the noise


@pytest.mark.parametrize("snr", [None, 1.0])
def test_align_recovers_known_poses(ribosome32, snr):
    p = cryoem.simulate(ribosome32, 40, voxel_size=10.0, seed=3, ctf=False, snr=snr)
    a = cryoem.align(p, ribosome32, angular_step=15.0, ctf=False, local_rounds=2)
    err = cryoem.rotation_error(a.particles.rotations, p.rotations)
    assert np.median(err) < 7.5 and np.mean(err < 15.0) >= 0.9, np.sort(err).round(1)


def test_reconstruct_bad_input(ribosome32, rng):
    p = cryoem.simulate(ribosome32[:16, :16, :16].copy(), 4, voxel_size=10.0, seed=1, backend="numba-cpu")
    with pytest.raises(TypeError, match="particles"):
        cryoem.reconstruct_fourier(p.images)
    with pytest.raises(ValueError, match="pad"):
        cryoem.reconstruct_fourier(p, pad=0)
    with pytest.raises(MemoryError, match="pad"):
        cryoem.reconstruct_fourier(p, max_bytes=1000)
    with pytest.raises(ValueError, match="volume"):
        cryoem.simulate(rng.standard_normal((8, 8, 6)), 3, voxel_size=1.0)
    with pytest.raises(ValueError, match="snr"):
        cryoem.simulate(ribosome32[:8, :8, :8].copy(), 3, voxel_size=1.0, snr=-1.0)


def test_cli_simulate_reconstruct(tmp_path, ribosome32):
    from spkernels.cli import main
    from spkernels.io import write_mrc

    write_mrc(tmp_path / "map.mrc", ribosome32[8:24, 8:24, 8:24], 10.0)
    star = tmp_path / "p.star"
    assert main(["cryoem", "simulate", str(tmp_path / "map.mrc"), str(star), "-n", "60", "--backend", "numba-cpu",
                 "--snr", "1.0"]) == 0
    assert main(["cryoem", "reconstruct", str(star), "-o", str(tmp_path / "half"), "--half-maps", "--quiet",
                 "--backend", "numba-cpu"]) == 0
    for f in ("half1.mrc", "half2.mrc", "map.mrc", "fsc.png"):
        assert os.path.getsize(tmp_path / "half" / f) > 0


def test_reconstruct_ls(ribosome32, rng):
    p = cryoem.simulate(ribosome32, 200, voxel_size=10.0, seed=2, shifts=10.0)
    ls = cryoem.reconstruct_ls(p, maxiter=25)
    direct = cryoem.reconstruct_fourier(p)
    upto = np.arange(17) <= 13
    assert fsc(ls.volume, direct.volume.astype(np.float64), voxel_size=10.0).fsc[upto].min() > 0.99
    assert fsc(ls.volume, ribosome32, voxel_size=10.0).fsc[upto].min() > 0.99
    # the Toeplitz normal operator against an explicit type-2 then type-1 NUFFT (A, then Aᴴ W)
    from spkernels.kernels import nufft3d1, nufft3d2

    small = p.select(np.arange(20))
    op, rhs, (x, y, z), w = cryoem.ls_system(small)
    u = rng.standard_normal((32, 32, 32))
    explicit = np.asarray(nufft3d1(x, y, z, w * np.asarray(nufft3d2(x, y, z, u.astype(complex), eps=1e-9)),
                                   (32, 32, 32), eps=1e-9, isign=+1)).real
    assert np.abs(op.matvec(u) - explicit).max() <= 1e-6 * np.abs(explicit).max()


_MPI_SCRIPT = """
import sys
import numpy as np
from mpi4py import MPI
from spkernels import cryoem, parallel

comm = MPI.COMM_WORLD
p = cryoem.read_relion(sys.argv[1])
mine = p.select(np.arange(len(p))[parallel.split_range(len(p), comm)])
maps = [cryoem.reconstruct_fourier(mine, backend="cpu", comm=comm).volume for _ in range(2)]
ref = np.load(sys.argv[3])
few = p.select(np.arange(12))
al = cryoem.align(few, ref, angular_step=30.0, ctf=False, local_rounds=1, comm=comm)
if comm.Get_rank() == 0:
    np.save(sys.argv[2], np.stack(maps))
    np.save(sys.argv[2] + ".rot.npy", al.particles.rotations)
"""


def test_mpi_reconstruct_matches_serial(tmp_path, ribosome32):
    """``comm=``: each of 2 ranks inserts its share, volumes and weights are summed; the map is
    the serial one to rounding and bitwise the same when reconstructed again on 2 ranks."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("mpi4py")
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None or "PMI_RANK" in os.environ:
        pytest.skip("mpiexec not found, or already under mpiexec")
    small = ribosome32[8:24, 8:24, 8:24].copy()
    np.save(tmp_path / "ref.npy", small)
    cryoem.simulate(small, 200, voxel_size=10.0, seed=4, ctf=False, output=tmp_path / "p.star")
    (tmp_path / "run.py").write_text(_MPI_SCRIPT)
    from _subprocess import env as subprocess_env

    env = subprocess_env(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    out = tmp_path / "m.npy"
    r = subprocess.run([mpiexec, "-n", "2", sys.executable, str(tmp_path / "run.py"), str(tmp_path / "p.star"),
                        str(out), str(tmp_path / "ref.npy")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    maps = np.load(out)
    assert np.array_equal(maps[0], maps[1])
    q = cryoem.read_relion(tmp_path / "p.star")
    serial = cryoem.reconstruct_fourier(q, backend="cpu").volume
    assert np.abs(maps[0] - serial).max() <= 1e-4 * np.abs(serial).max()
    # align over 2 ranks: each rank's share, gathered, gives the serial poses
    al = cryoem.align(q.select(np.arange(12)), small, angular_step=30.0, ctf=False, local_rounds=1)
    assert np.allclose(np.load(str(out) + ".rot.npy"), al.particles.rotations, atol=1e-9)


def test_cli_demo(tmp_path):
    from spkernels.cli import main

    out = tmp_path / "demo"
    assert main(["cryoem", "demo", "-o", str(out), "--quiet", "-n", "100", "--box", "24", "--voxel-size", "8"]) == 0
    import json

    rep = json.loads((out / "report.json").read_text())
    assert rep["particles"] == 100 and 16.0 <= rep["resolution_0143"] < 80.0
    for f in ("particles.star", "particles.mrcs", "half1.mrc", "map.mrc", "fsc.png", "sections.png"):
        assert os.path.getsize(out / f) > 0


def test_refine_recovers_poses_from_a_perturbed_start(ribosome32):
    """One refine round (a global align, then half maps) from poses 10–20° off ends near the truth."""
    from spkernels.geometry.orientations import random_orientations
    from spkernels.geometry.quaternion import quaternion_to_matrix

    p = cryoem.simulate(ribosome32, 60, voxel_size=10.0, seed=8, ctf=False)
    rng = np.random.default_rng(1)
    axis = quaternion_to_matrix(random_orientations(60, rng))
    turn = np.deg2rad(rng.uniform(10.0, 20.0, 60))
    c, s = np.cos(turn), np.sin(turn)
    rz = np.zeros((60, 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
    off = np.einsum("nij,njk,nkl,nml->nim", p.rotations, axis, rz, axis)  # R · (Q Rz Qᵀ)
    start = p.select(np.arange(60))
    start.rotations = off
    before = np.median(cryoem.rotation_error(off, p.rotations))
    out, hm = cryoem.refine(start, ribosome32, iterations=1, angular_step=15.0, ctf=False)
    after = np.median(cryoem.rotation_error(out.rotations, p.rotations))
    assert 10.0 <= before <= 20.0 and after < 7.5 and hm.half1.shape == (32, 32, 32)
    # a local search alone, from the perturbed poses, also comes back (turns of up to ~26°)
    loc = cryoem.align(start, ribosome32, angular_step=30.0, ctf=False, local_only=True, local_rounds=4)
    assert np.median(cryoem.rotation_error(loc.particles.rotations, p.rotations)) < before / 2


def test_padding_to_a_fast_fft_size_keeps_the_map(ribosome32, monkeypatch):
    """A 26³ box padded 2x is 52 = 4·13 plainly and 54 = 2·3³ with FFT-size advice: the two maps
    agree (FSC ~1 up to 0.9 Nyquist, same scale) and both match the truth."""
    from spkernels import backends
    from spkernels.cryoem import reconstruct as rec_mod

    backend = "cpu" if backends.is_available("cpu") else "numba-cpu"
    truth = np.ascontiguousarray(ribosome32[3:29, 3:29, 3:29])
    p = cryoem.simulate(truth, 600, voxel_size=10.0, ctf=False, seed=13, backend=backend)
    assert rec_mod._padded(26, 2) == 54
    advised = cryoem.reconstruct_fourier(p, ctf=False, backend=backend).volume.astype(np.float64)
    monkeypatch.setattr(rec_mod, "PAD_SMOOTH", None)
    assert rec_mod._padded(26, 2) == 52
    plain = cryoem.reconstruct_fourier(p, ctf=False, backend=backend).volume.astype(np.float64)
    r = fsc(advised, plain, voxel_size=10.0)
    upto = r.frequency <= 0.9 * 0.5 / 10.0
    assert r.fsc[upto].min() > 0.999, np.round(r.fsc, 5)
    assert np.linalg.norm(advised - plain) / np.linalg.norm(plain) < 0.02
    assert (advised * plain).sum() / (plain ** 2).sum() == pytest.approx(1.0, abs=0.005)
    for vol in (advised, plain):
        assert fsc(vol, truth, voxel_size=10.0).fsc[upto].min() > 0.99
