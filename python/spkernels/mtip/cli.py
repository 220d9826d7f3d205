"""``spkernels mtip ...`` subcommands (for now: ``simulate``)."""

from __future__ import annotations

import argparse
import logging
import time

__all__ = ["add_parser"]


def _cmd_simulate(args) -> int:
    from ..geometry import Beam, Detector
    from ..io import write_mrc, write_spi_h5
    from .simulate import simulate

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    beam = Beam.from_file(args.beam) if args.beam else Beam.standard()
    if args.photons is not None:
        beam = Beam(beam.photon_energy, args.photons, beam.focus_radius)
    if args.energy is not None:
        beam = Beam(args.energy, beam.photons_per_pulse, beam.focus_radius)
    det = Detector(args.pixels, args.distance, width=args.width, binning=args.binning)
    particle = args.pdb
    if particle is None:
        from .particle import demo_particle

        particle = demo_particle(args.particle_seed)
    t0 = time.perf_counter()
    data = simulate(args.n_images, particle, det, beam, seed=args.seed, multi_hit_fraction=args.multi_hit,
                    beamstop_radius=args.beamstop, progress=not args.quiet)
    write_spi_h5(args.output, data)
    if args.mrc:
        write_mrc(args.mrc, data.density, data.voxel_size)
    photons = data.intensities.sum(axis=(1, 2, 3))
    print(f"wrote {args.output}: {data.n_images} images of {det.shape[0]}x{det.shape[1]} px, "
          f"{photons.mean():.0f} photons/image (median {float(sorted(photons)[len(photons) // 2]):.0f}), "
          f"corner resolution {det.corner_resolution(beam):.2f} A, {time.perf_counter() - t0:.1f} s")
    return 0


def add_parser(subparsers) -> None:
    """Register ``mtip`` and its subcommands on the top-level ``spkernels`` parser."""
    p = subparsers.add_parser("mtip", help="X-ray SPI: simulate data (MTIP reconstruction to come)")
    sub = p.add_subparsers(dest="mtip_command", required=True)
    s = sub.add_parser("simulate", help="simulate diffraction images into an HDF5 file (skopi/SpiniFEL layout)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("output", help="HDF5 file to write")
    s.add_argument("-n", "--n-images", type=int, default=1000)
    s.add_argument("--pdb", help="PDB/mmCIF file of the particle (default: the built-in demo particle)")
    s.add_argument("--particle-seed", type=int, default=0, help="seed of the built-in demo particle")
    s.add_argument("--beam", help="CrystFEL-style .beam file (default: 4600 eV, 1e12 photons, 0.5 um)")
    s.add_argument("--photons", type=float, help="photons per pulse (overrides the beam)")
    s.add_argument("--energy", type=float, help="photon energy in eV (overrides the beam)")
    s.add_argument("--pixels", type=int, default=128, help="detector pixels per side")
    s.add_argument("--width", type=float, default=0.08, help="detector side in m")
    s.add_argument("--distance", type=float, default=0.2, help="detector distance in m")
    s.add_argument("--binning", type=int, default=1, help="bin b x b pixels")
    s.add_argument("--multi-hit", type=float, default=0.0, help="fraction of images with 2 particles")
    s.add_argument("--beamstop", type=float, default=0.0, help="beam-stop radius in (binned) pixels")
    s.add_argument("--seed", type=int, default=0, help="seed for orientations and noise")
    s.add_argument("--mrc", help="also write the ground-truth density (band-limited) to this MRC file")
    s.add_argument("--quiet", action="store_true", help="no progress bar or log")
    s.set_defaults(func=_cmd_simulate)
