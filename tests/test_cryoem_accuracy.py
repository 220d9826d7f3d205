"""Accuracy of spkernels.cryoem on CI-sized cases with a CTF (defoci 1–3 µm), issue 15 item 5.

- Noise: half maps of noiseless particles agree to Nyquist, so "the resolution without noise" is
  the Nyquist limit and the noisy/noiseless ratio measures how much signal survives the noise at
  Nyquist. What the reconstruction can be asked for is the information limit of the data: the
  test predicts the half-map FSC from first principles (the map's power spectrum, the particles'
  mean CTF², the number of central planes that cross a Fourier voxel, the noise variance and the
  mask's volume) and checks that the measured 0.143 resolution sits at that prediction.
- Alignment: known poses are recovered to within the angular step with a CTF, noiseless and at
  SNR 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spkernels import cryoem
from spkernels.cryoem.ctf import evaluate


def information_limit_fsc(truth, particles, sigma2, mask, n_half):
    """The half-map FSC that white noise of variance `sigma2` leaves, per shell of `truth`.

    A central plane crosses a Fourier voxel at radius k (voxels) with probability 1/(2k) for
    uniform random views, so a half set of `n_half` images gives each voxel ``n_half/(2k)``
    measurements, each of SNR ``<CTF²>_k |F(k)|² / (sigma2 · box²)`` (unnormalised FFTs; the
    Fourier slice theorem makes the image spectrum the volume's central plane). The reconstruction's
    noise is spread over the whole box, a mask keeps the fraction ``Σ mask² / box³`` of it and all
    of the signal. FSC = SSNR / (1 + SSNR).
    """
    box = truth.shape[0]
    px = particles.pixel_size
    k = np.arange(box) - box // 2
    shell = np.rint(np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)).astype(int)
    power = np.abs(np.fft.fftshift(np.fft.fftn(truth))) ** 2
    ns = box // 2 + 1
    p = (np.bincount(shell.ravel(), power.ravel()) / np.bincount(shell.ravel()))[:ns]
    s = np.arange(ns) / (box * px)
    c2 = np.array([np.mean(evaluate(si, 0.0, particles.defocus_u, particles.defocus_v, particles.defocus_angle,
                                    particles.voltage, particles.cs, particles.amplitude_contrast) ** 2) for si in s])
    fraction = float(np.sum(mask ** 2)) / box ** 3
    ssnr = n_half / (2.0 * np.maximum(np.arange(ns), 0.5)) * c2 * p / (sigma2 * box ** 2) / fraction
    return ssnr / (1.0 + ssnr)


@pytest.mark.parametrize("seed", [1, 2])
def test_noise_reaches_the_information_limit(ribosome32, seed):
    """32³ (10 Å), CTF 1–3 µm, SNR 0.1, 1000 particles, known poses.

    Noiseless: FSC >= 0.99 in every shell, the resolution is Nyquist (20 Å). SNR 0.1: the 0.143
    resolution is within 4% of the information limit (measured 0.7–0.9% off), and here, where the
    band-limited crop keeps much power at Nyquist, within 1.2x of the noiseless one (1.155–1.159x).
    The full 65³ map at 5 Å, 5000 particles, sits at its limit too, but that limit is 1.36x: its
    power falls 5 decades by Nyquist (seeds 1-3: 13.95, 13.74, 13.81 Å against the limit's 13.81,
    13.83, 13.82 Å and Nyquist 10.16 Å; 13.3-13.4 Å, 1.31x, under a fitted mask, phase-corrected).
    """
    n, snr = 1000, 0.1
    clean = cryoem.simulate(ribosome32, n, voxel_size=10.0, seed=seed)
    noisy = cryoem.simulate(ribosome32, n, voxel_size=10.0, seed=seed, snr=snr)
    noise = noisy.images.astype(np.float64) - clean.images
    sigma2 = float(noise.var())
    # simulate's SNR: variance of the clean CTF-modulated images over the whole box / noise variance
    assert clean.images.astype(np.float64).var() / sigma2 == pytest.approx(snr, rel=0.01)
    h0 = cryoem.reconstruct_half_maps(clean)
    assert np.nanmin(h0.fsc.fsc) > 0.99, np.round(h0.fsc.fsc, 4)
    assert not h0.resolution.reached and h0.resolution.angstrom == pytest.approx(20.0)
    h1 = cryoem.reconstruct_half_maps(noisy)
    limit = information_limit_fsc(ribosome32, noisy, sigma2, h1.mask, n // 2)
    expected = dataclasses.replace(h1.fsc, fsc=limit).resolution(0.143)
    got = h1.resolution
    assert got.reached and expected.reached
    assert got.angstrom == pytest.approx(expected.angstrom, rel=0.04), (np.round(h1.fsc.fsc, 3), np.round(limit, 3))
    assert got.angstrom / h0.resolution.angstrom <= 1.2, str(got)
    # low shells, far above the noise, agree with the prediction closely too
    assert np.abs(h1.fsc.fsc[1:12] - limit[1:12]).max() < 0.05


@pytest.mark.parametrize("seed, snr", [(3, None), (4, 1.0)])
def test_align_with_ctf_recovers_known_poses(ribosome32, snr, seed):
    """CTF (1–3 µm), noiseless and SNR 1: at least 95% of particles within the 15° step
    (measured 99–100% on 100 particles, seeds 3–4; 87–96% before candidates and climbing), median
    error under a quarter of the step (measured 1.5–1.7°)."""
    p = cryoem.simulate(ribosome32, 40, voxel_size=10.0, seed=seed, snr=snr)
    a = cryoem.align(p, ribosome32, angular_step=15.0, ctf=True, local_rounds=2)
    err = cryoem.rotation_error(a.particles.rotations, p.rotations)
    assert np.mean(err < 15.0) >= 0.95 and np.median(err) < 3.75, np.sort(err).round(1)


def test_align_candidates_and_climb_bad_input(ribosome32):
    p = cryoem.simulate(ribosome32, 2, voxel_size=10.0, seed=1)
    with pytest.raises(ValueError, match="candidates"):
        cryoem.align(p, ribosome32, angular_step=30.0, candidates=0)
    with pytest.raises(ValueError, match="max_climb"):
        cryoem.align(p, ribosome32, angular_step=30.0, max_climb=0)


def test_masked_fsc_phase_randomisation_removes_mask_correlation(rng):
    """Half maps share a signal band-limited to 6 voxels⁻¹ plus independent noise; a sharp mask cut
    from the signal makes the raw masked FSC high (> 0.5) in shells with no shared signal at all;
    the phase-randomised correction brings it back to ~0 there and leaves the shells below the
    randomisation shell alone."""
    n = 40
    k = np.fft.fftfreq(n) * n
    kr = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    x = np.arange(n) - n // 2
    r = np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2)
    band = kr <= 6

    def lowpass(v, keep):
        return np.fft.ifftn(np.fft.fftn(v) * keep).real

    sig = lowpass(lowpass(rng.standard_normal((n, n, n)), band) * (r < 12), band)
    sig /= sig.std()
    a = sig + 0.3 * rng.standard_normal(sig.shape)
    b = sig + 0.3 * rng.standard_normal(sig.shape)
    mask = (np.abs(lowpass(sig, kr <= 3)) > 0.3).astype(np.float64)
    res = cryoem.masked_fsc(a, b, 1.0, mask, seed=1)
    assert 6 <= res.randomise_from <= 8
    beyond = np.arange(len(res.fsc.fsc)) > res.randomise_from + 1
    assert res.masked.fsc[beyond].min() > 0.45  # the mask's own correlation (0.51-0.62 over 6 seeds)
    # where FSC_n is still ~0.98 the correction divides by 1 - FSC_n ~ 0.02: judge it further out
    far = np.arange(len(res.fsc.fsc)) > res.randomise_from + 4
    # (over 6 seeds: mean -0.06..-0.01, largest |FSC| 0.05-0.15)
    assert abs(res.fsc.fsc[far].mean()) < 0.1 and np.abs(res.fsc.fsc[far]).max() < 0.25, np.round(res.fsc.fsc, 3)
    assert np.abs(res.fsc.fsc[beyond]).max() < 0.4
    assert np.array_equal(res.fsc.fsc[:res.randomise_from + 1], res.masked.fsc[:res.randomise_from + 1])
    assert np.abs(res.unmasked.fsc[beyond]).max() < 0.2


def test_particle_mask_follows_the_particle(ribosome32):
    m = cryoem.particle_mask(ribosome32, 10.0)
    assert m.shape == ribosome32.shape and m.min() >= 0.0 and m.max() == 1.0
    energy = (ribosome32 ** 2).sum()
    assert ((ribosome32 * m) ** 2).sum() > 0.99 * energy  # keeps the particle
    # and less noise than the sphere (at 10 Å voxels the default 3 + 6 voxel margin is wide: 0.86)
    assert (m ** 2).sum() < 0.9 * (cryoem.soft_sphere(32) ** 2).sum()
    with pytest.raises(ValueError, match="threshold"):
        cryoem.particle_mask(ribosome32, 10.0, threshold=1.5)
    with pytest.raises(ValueError, match="volume"):
        cryoem.particle_mask(ribosome32[0], 10.0)
    with pytest.raises(ValueError, match="mask"):
        cryoem.masked_fsc(ribosome32, ribosome32, 10.0, mask="sphere")
    with pytest.raises(ValueError, match="half2"):
        cryoem.masked_fsc(ribosome32, ribosome32[:16], 10.0)


def test_half_maps_with_a_particle_mask(ribosome32):
    """``reconstruct_half_maps(mask="particle")`` reports the corrected FSC of its own half maps."""
    p = cryoem.simulate(ribosome32, 300, voxel_size=10.0, seed=6, snr=0.3)
    hm = cryoem.reconstruct_half_maps(p, mask="particle")
    ref = cryoem.masked_fsc(hm.half1, hm.half2, 10.0)
    assert np.array_equal(hm.fsc.fsc, ref.fsc.fsc) and np.array_equal(hm.mask, ref.mask)
    assert hm.resolution.reached and 20.0 < hm.resolution.angstrom < 60.0
    with pytest.raises(ValueError, match="mask"):
        cryoem.reconstruct_half_maps(p, mask="tight")


def test_cli_reconstruct_with_a_particle_mask(tmp_path, ribosome32, capsys):
    """``spkernels cryoem reconstruct --half-maps --particle-mask`` reports the corrected FSC's
    resolution, the one ``reconstruct_half_maps(mask="particle")`` gives for the same file."""
    from spkernels.cli import main

    star = tmp_path / "p.star"
    cryoem.simulate(ribosome32, 200, voxel_size=10.0, seed=9, snr=0.3, output=star)
    assert main(["cryoem", "reconstruct", str(star), "-o", str(tmp_path / "half"), "--half-maps", "--quiet",
                 "--particle-mask"]) == 0
    out = capsys.readouterr().out
    hm = cryoem.reconstruct_half_maps(cryoem.read_relion(star), mask="particle")
    assert f"resolution {hm.resolution}" in out, out
    for f in ("half1.mrc", "half2.mrc", "map.mrc", "fsc.png"):
        assert (tmp_path / "half" / f).stat().st_size > 0
