"""``spkernels mtip ...`` subcommands: ``simulate``, ``run`` (a TOML config) and ``demo``."""

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


def _reconstruct_and_report(data_set, cfg, out_dir, *, checkpoint=None, resume=False, quiet=False) -> dict:
    """Reconstruct an SPIDataset, write the outputs, print a summary; return the report."""
    from .reconstruct import SPIData, reconstruct
    from .report import write_outputs

    data = SPIData.from_dataset(data_set)
    t0 = time.perf_counter()
    result = reconstruct(data, cfg, checkpoint=checkpoint, resume=resume, progress=not quiet)
    wall = time.perf_counter() - t0
    rep = write_outputs(result, out_dir, reference=data_set.density, reference_voxel_size=data_set.voxel_size,
                        true_orientations=data.orientations, backend=cfg.backend)
    rep["wall_seconds"] = wall
    summary = [f"reconstruction of {data.n_images} images in {wall:.0f} s -> {out_dir}"]
    summary.append(f"  detector-corner resolution of the data: {1.0 / data.s_max:.2f} A")
    if "fsc_resolution_angstrom" in rep:
        ratio = rep["fsc_resolution_angstrom"] * data.s_max
        summary.append(f"  FSC-0.5 resolution: {rep['fsc_resolution_angstrom']:.2f} A ({ratio:.2f} x corner)")
    if "median_orientation_error_deg" in rep:
        summary.append(f"  median orientation error: {rep['median_orientation_error_deg']:.1f} deg")
    print("\n".join(summary))
    return rep


def _cmd_run(args) -> int:
    import tomllib
    from pathlib import Path

    from ..io import read_spi_h5
    from .reconstruct import MTIPConfig

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    with open(args.config, "rb") as f:
        raw = tomllib.load(f)
    run = raw.get("run", {})
    unknown = set(run) - {"input", "output", "checkpoint", "n_images"}
    if unknown:
        raise SystemExit(f"unknown [run] settings: {', '.join(sorted(unknown))}")
    if "input" not in run:
        raise SystemExit("the config needs [run] input = \"data.h5\"")
    base = Path(args.config).parent
    out_dir = Path(args.output or run.get("output", "mtip-out"))
    if not out_dir.is_absolute() and args.output is None:
        out_dir = base / out_dir
    cfg = MTIPConfig.from_dict(raw.get("mtip", {}))
    data_set = read_spi_h5(base / run["input"], stop=run.get("n_images"))
    ckpt = run.get("checkpoint", str(out_dir / "checkpoint.h5"))
    out_dir.mkdir(parents=True, exist_ok=True)
    _reconstruct_and_report(data_set, cfg, out_dir, checkpoint=ckpt, resume=args.resume, quiet=args.quiet)
    return 0


def _cmd_demo(args) -> int:
    from pathlib import Path

    from ..geometry import Beam, Detector
    from .particle import demo_particle
    from .reconstruct import MTIPConfig
    from .simulate import simulate

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The standard detector binned 2x2 (64x64, corner 9.96 A). The standard 1e12-photon pulse gives
    # this ~570 kDa particle only ~600 photons per image; 3e13 gives ~18k, the regime in which MTIP
    # from scratch converges (3000 images: FSC-0.5 of about 1.1x the corner resolution).
    det = Detector.standard(binning=2)
    beam = Beam(4600.0, args.photons, 5e-7)
    t0 = time.perf_counter()
    data_set = simulate(args.n_images, demo_particle(0), det, beam, seed=args.seed, progress=not args.quiet)
    print(f"simulated {args.n_images} images in {time.perf_counter() - t0:.0f} s "
          f"({data_set.intensities.sum(axis=(1, 2, 3)).mean():.0f} photons/image)")
    cfg = MTIPConfig(seed=args.seed, backend=args.backend)
    _reconstruct_and_report(data_set, cfg, out_dir, checkpoint=str(out_dir / "checkpoint.h5"), quiet=args.quiet)
    return 0


def add_parser(subparsers) -> None:
    """Register ``mtip`` and its subcommands on the top-level ``spkernels`` parser."""
    p = subparsers.add_parser("mtip", help="X-ray SPI: simulate data, reconstruct by MTIP, run the demo")
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

    r = sub.add_parser("run", help="reconstruct the dataset named in a TOML config ([run] and [mtip] tables)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("config", help="TOML file: [run] input, output, checkpoint; [mtip] MTIPConfig settings")
    r.add_argument("-o", "--output", help="output folder (overrides [run] output)")
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    r.add_argument("--quiet", action="store_true", help="no progress bar or log")
    r.set_defaults(func=_cmd_run)

    d = sub.add_parser("demo", help="simulate the built-in particle and reconstruct it from random orientations",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("-o", "--output", default="mtip-demo", help="output folder")
    d.add_argument("-n", "--n-images", type=int, default=3000)
    d.add_argument("--photons", type=float, default=3e13, help="photons per pulse")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--backend", default="auto", help="kernel backend (auto picks the fastest usable)")
    d.add_argument("--quiet", action="store_true", help="no progress bar or log")
    d.set_defaults(func=_cmd_demo)
