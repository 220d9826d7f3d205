"""``spkernels mtip ...`` subcommands: ``simulate``, ``run`` (a TOML config) and ``demo``.

Bad input is refused before anything runs or is written, as one line naming the file and the
field (exit code 2; ``spkernels --debug ...`` for the traceback): the TOML (unknown tables and
keys in any table, wrong types, counts out of range), the input HDF5 (missing datasets, NaN
images, fewer images than ``n_images``) and, with ``--resume``, the checkpoint (unreadable,
truncated, inconsistent, or written for other data or settings: checkpoints carry SHA-256
fingerprints of both).

MPI: started under ``mpiexec -n N`` (MPICH or Open MPI; mpi4py installed, ``spkernels[mpi]``),
``run`` and ``demo`` split the images over the N ranks (contiguous shares), sum the merge over
ranks, and rank 0 alone writes outputs and checkpoints; ``--resume`` works the same way (every
rank reads the checkpoint). A rank that fails prints its error and calls ``MPI_Abort``, so the
job ends instead of hanging. On several nodes, give mpiexec a host file and make the config's
input, output and checkpoint paths resolve to a file system every node sees, e.g.
``mpiexec -f hosts -n 8 -ppn 4 spkernels mtip run /shared/run/config.toml`` (MPICH; Open MPI:
``mpiexec --hostfile hosts -n 8 --map-by ppr:4:node ...``). Every rank holds the whole data set
in memory (it reads the file, then keeps its share of the images for matching).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from ..cli import add_detector_arguments, detector_from_args

__all__ = ["ConfigError", "add_parser", "load_run_data", "read_run_config"]


def _cmd_simulate(args) -> int:
    from ..geometry import Beam
    from ..io import write_mrc, write_spi_h5
    from .simulate import simulate

    from ..cli import mpi_world

    comm = mpi_world()
    args.comm = comm
    if not _is_root(comm):  # one writer: the other ranks have nothing to do
        return 0
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.n_images < 1:
        raise ValueError(f"`--n-images` must be >= 1, got {args.n_images}")
    beam = Beam.from_file(args.beam) if args.beam else Beam.standard()
    if args.photons is not None:
        beam = Beam(beam.photon_energy, args.photons, beam.focus_radius)
    if args.energy is not None:
        beam = Beam(args.energy, beam.photons_per_pulse, beam.focus_radius)
    det = detector_from_args(args)
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


def _is_root(comm) -> bool:
    return comm is None or comm.Get_rank() == 0


def _logging(quiet: bool, comm) -> None:
    level = logging.WARNING if quiet or not _is_root(comm) else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")


def load_reference(path, s_max: float):
    """A reference density for the FSC of a run: ``(density (z, y, x), voxel size Å)``.

    An MRC map is used as it is (its header's voxel size, which must be set); a PDB/mmCIF
    model is made into the band-limited density that data reaching `s_max` (Å⁻¹) can
    determine, on a grid of voxel ``1 / (2 s_max)`` (what the simulator writes for its truth).
    Any problem is a :class:`ConfigError` naming the file.
    """
    import math

    import numpy as np

    p = os.fspath(path)
    if not os.path.exists(p):
        raise ConfigError(f"{p}: no such reference file (--reference / [run] `reference`)")
    low = p.lower()
    try:
        if low.endswith((".mrc", ".map", ".ccp4", ".mrc.gz", ".map.gz")):
            from ..io import read_mrc

            vol = read_mrc(p)
            vx = float(vol.voxel_size[0])
            if not vx > 0 or len(set(round(float(v), 6) for v in vol.voxel_size)) != 1:
                raise ConfigError(f"{p}: the reference map needs one positive voxel size in its header, got "
                                  f"{tuple(vol.voxel_size)}")
            return np.asarray(vol.data, dtype=np.float64), vx
        if low.endswith((".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".cif.gz")):
            from .density import band_limited_density
            from .simulate import particle_density

            dens = particle_density(p)
            voxel = 1.0 / (2.0 * s_max)
            n = 2 * int(math.ceil(dens.radius() / voxel)) + 3
            return band_limited_density(dens, n, voxel), voxel
    except ConfigError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{p}: cannot be read as a reference: {' '.join(str(exc).split())}") from None
    raise ConfigError(f"{p}: a reference must be an MRC map (.mrc/.map) or a PDB/mmCIF model (.pdb/.cif)")


def _reconstruct_and_report(data_set, cfg, out_dir, *, checkpoint=None, resume=False, quiet=False, comm=None,
                            data=None, reference=None, fixed_orientations=False, hits=None) -> dict | None:
    """Reconstruct an SPIDataset, write the outputs, print a summary; return the report.

    Under MPI (`comm`) every rank reconstructs its share of the images and rank 0 alone writes
    the outputs and checkpoints and prints (the other ranks return None).
    """
    from .reconstruct import SPIData, reconstruct
    from .report import write_outputs

    data = SPIData.from_dataset(data_set) if data is None else data
    t0 = time.perf_counter()
    result = reconstruct(data, cfg, checkpoint=checkpoint, resume=resume, progress=not quiet, comm=comm,
                         fixed_orientations=fixed_orientations, hits=hits)
    wall = time.perf_counter() - t0
    if not _is_root(comm):
        return None
    ref, ref_voxel = (data_set.density, data_set.voxel_size) if reference is None else reference
    truth = data.orientations
    if truth is not None and result.kept_images is not None:  # multi-hits were dropped
        truth = truth[result.kept_images]
    rep = write_outputs(result, out_dir, reference=ref, reference_voxel_size=ref_voxel,
                        true_orientations=truth, backend=cfg.backend)
    rep["wall_seconds"] = wall
    ranks = f" on {comm.Get_size()} MPI ranks" if comm is not None else ""
    used = data.n_images if result.kept_images is None else int(result.kept_images.sum())
    dropped = "" if result.kept_images is None else f" ({data.n_images - used} multi-hits dropped)"
    summary = [f"reconstruction of {used} images{dropped}{ranks} in {wall:.0f} s -> {out_dir}"]
    summary.append(f"  detector-corner resolution of the data: {1.0 / data.s_max:.2f} A")
    if "fsc_resolution_angstrom" in rep:
        ratio = rep["fsc_resolution_angstrom"] * data.s_max
        summary.append(f"  FSC-0.5 resolution: {rep['fsc_resolution_angstrom']:.2f} A ({ratio:.2f} x corner)")
    if "median_orientation_error_deg" in rep:
        summary.append(f"  median orientation error: {rep['median_orientation_error_deg']:.1f} deg")
    if rep.get("size_estimate"):
        summary.append(f"  particle diameter: {rep['size_estimate']['diameter']:.1f} A ({rep['size_estimate']['method']})")
    if rep.get("stages"):
        summary.append("  generations per stage: " + ", ".join(
            f"{st['resolution_limit']:.1f} A: {st['generations']}{' (restarted)' if st['restart'] else ''}"
            for st in rep["stages"]))
    print("\n".join(summary))
    return rep


#: keys of the config file's [run] table and their types
RUN_KEYS = {"input": str, "output": str, "checkpoint": str, "n_images": int, "reference": str, "binning": int,
            "hits": str}


class ConfigError(ValueError):
    """A config file, input file or checkpoint that cannot be used; the message names the file
    and the field. The command line prints it as one line and exits with code 2."""


def read_run_config(path):
    """Read and check a ``spkernels mtip run`` TOML file: ``[run]`` and ``[mtip]`` tables.

    Returns ``(run, cfg)``: the ``[run]`` table (keys checked: `input` (required), `output`,
    `checkpoint` strings, `n_images` a positive integer) and the :class:`MTIPConfig` of
    ``[mtip]``. Every problem is a :class:`ConfigError` naming the file and the field.
    """
    import tomllib

    from .config import MTIPConfig

    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot be read: {exc}") from None
    unknown = sorted(set(raw) - {"run", "mtip"})
    if unknown:
        raise ConfigError(f"{p}: unknown table or key {', '.join(unknown)} (known: [run], [mtip])")
    run = raw.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{p}: `run` must be a table ([run]), got {type(run).__name__}")
    unknown = sorted(set(run) - set(RUN_KEYS))
    if unknown:
        raise ConfigError(f"{p}: unknown [run] setting {', '.join(unknown)} (known: {', '.join(RUN_KEYS)})")
    if "input" not in run:
        raise ConfigError(f"{p}: [run] needs `input` = \"data.h5\" (the HDF5 file of images)")
    for key, typ in RUN_KEYS.items():
        if key not in run:
            continue
        v = run[key]
        if typ is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{p}: [run] `{key}` must be an integer, got {type(v).__name__} {v!r}")
            if v < 1:
                raise ConfigError(f"{p}: [run] `{key}` must be >= 1, got {v}")
        elif not isinstance(v, str) or not v:
            raise ConfigError(f"{p}: [run] `{key}` must be a non-empty string (a path), got {type(v).__name__} {v!r}")
    mtip = raw.get("mtip", {})
    try:
        cfg = MTIPConfig.from_dict(mtip)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: [mtip] {exc}") from None
    return run, cfg


def load_run_data(path, n_images=None, binning: int = 1):
    """Read the SPI HDF5 input of a run (the first `n_images` images, pixels binned `binning` x
    `binning`) and check it as MTIP data: ``(SPIDataset, SPIData)``; any problem is a
    :class:`ConfigError` naming the file."""
    from ..io import read_spi_h5
    from .data import SPIData

    p = os.fspath(path)
    if not os.path.exists(p):
        raise ConfigError(f"{p}: no such input file ([run] `input`)")
    try:
        ds = read_spi_h5(p, stop=n_images, binning=binning)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: cannot be read as SPI data: {' '.join(str(exc).split())}") from None
    if n_images is not None and ds.n_images < n_images:
        raise ConfigError(f"{p}: holds {ds.n_images} images, fewer than [run] `n_images` = {n_images}")
    if ds.n_images < 1:
        raise ConfigError(f"{p}: holds no images")
    try:
        data = SPIData.from_dataset(ds)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return ds, data


def _cmd_run(args) -> int:
    from pathlib import Path

    from ..cli import mpi_world
    from . import checkpoint as ckpt

    comm = mpi_world()
    args.comm = comm
    _logging(args.quiet, comm)
    run, cfg = read_run_config(args.config)
    base = Path(args.config).parent
    out_dir = Path(args.output or run.get("output", "mtip-out"))
    if not out_dir.is_absolute() and args.output is None:
        out_dir = base / out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: the output folder is a file")
    data_set, data = load_run_data(base / run["input"], run.get("n_images"), run.get("binning", 1))
    reference = None
    ref_path = args.reference or run.get("reference")
    if ref_path is not None:  # checked before anything runs, like the input
        ref_path = Path(ref_path) if args.reference or Path(ref_path).is_absolute() else base / ref_path
        reference = load_reference(ref_path, data.s_max)
    hits = None
    if "hits" in run:  # a multi-hit classifier (spkernels hits train): its multi-hits are dropped first
        hits = Path(run["hits"]) if Path(run["hits"]).is_absolute() else base / run["hits"]
        if not hits.exists():
            raise ConfigError(f"{hits}: no such multi-hit model file ([run] `hits`)")
    if args.fixed_orientations and data.orientations is None:
        raise ConfigError(f"{base / run['input']}: --fixed-orientations needs true orientations, which the file lacks")
    ck = Path(run["checkpoint"]) if "checkpoint" in run else out_dir / "checkpoint.h5"
    if not ck.is_absolute() and "checkpoint" in run:
        ck = base / ck
    if args.resume:
        # Check the checkpoint before anything runs or is written: it must be ours, readable,
        # and written for these data and settings.
        from .reconstruct import start_plan

        plan = [(c, Path(f)) for c, f in start_plan(cfg, ck)]  # one file per start ([mtip] starts)
        if not any(f.exists() for _, f in plan):
            raise ConfigError(f"{plan[0][1]}: --resume needs this checkpoint, which does not exist")
        try:
            # With multi-hit rejection the run checks the data itself, after dropping them.
            mode = {"fixed_orientations": args.fixed_orientations, "multi_hit_rejection": hits is not None}
            for c, f in plan:
                if f.exists():
                    ckpt.load(f, c, data=None if hits is not None else data, run_mode=mode)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if _is_root(comm):
        out_dir.mkdir(parents=True, exist_ok=True)
    if comm is not None:
        comm.Barrier()
    _reconstruct_and_report(data_set, cfg, out_dir, checkpoint=str(ck), resume=args.resume, quiet=args.quiet,
                            comm=comm, data=data, reference=reference, fixed_orientations=args.fixed_orientations,
                            hits=hits)
    return 0


def _cmd_demo(args) -> int:
    from pathlib import Path

    from ..geometry import Beam, Detector
    from .particle import demo_particle
    from .reconstruct import MTIPConfig
    from .simulate import simulate

    from ..cli import mpi_world

    comm = mpi_world()  # every rank simulates the same images (one seed); rank 0 writes
    args.comm = comm
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    out_dir = Path(args.output)
    if _is_root(comm):
        out_dir.mkdir(parents=True, exist_ok=True)
    # The standard detector binned 2x2 (64x64, corner 9.96 A). The standard 1e12-photon pulse gives
    # this ~570 kDa particle only ~600 photons per image; 3e13 gives ~18k, the regime in which MTIP
    # from scratch converges (3000 images: FSC-0.5 of about 1.1x the corner resolution).
    det = Detector.standard(binning=2)
    beam = Beam(4600.0, args.photons, 5e-7)
    t0 = time.perf_counter()
    data_set = simulate(args.n_images, demo_particle(0), det, beam, seed=args.seed, progress=not args.quiet)
    if _is_root(comm):
        print(f"simulated {args.n_images} images in {time.perf_counter() - t0:.0f} s "
              f"({data_set.intensities.sum(axis=(1, 2, 3)).mean():.0f} photons/image)")
    cfg = MTIPConfig(seed=args.seed, backend=args.backend)
    _reconstruct_and_report(data_set, cfg, out_dir, checkpoint=str(out_dir / "checkpoint.h5"), quiet=args.quiet,
                            comm=comm)
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
    add_detector_arguments(s, binning=1)
    s.add_argument("--multi-hit", type=float, default=0.0, help="fraction of images with 2 particles")
    s.add_argument("--beamstop", type=float, default=0.0, help="beam-stop radius in (binned) pixels")
    s.add_argument("--seed", type=int, default=0, help="seed for orientations and noise")
    s.add_argument("--mrc", help="also write the ground-truth density (band-limited) to this MRC file")
    s.add_argument("--quiet", action="store_true", help="no progress bar or log")
    s.set_defaults(func=_cmd_simulate)

    r = sub.add_parser("run", help="reconstruct the dataset named in a TOML config ([run] and [mtip] tables)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("config", help="TOML file: [run] input, output, checkpoint, n_images, binning, reference, hits (paths relative to the "
                                  "file); [mtip] MTIPConfig settings. Under `mpiexec -n N` the images are split "
                                  "over the ranks and rank 0 writes")
    r.add_argument("-o", "--output", help="output folder (overrides [run] output)")
    r.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    r.add_argument("--fixed-orientations", action="store_true",
                   help="hold the file's true orientations fixed (merge and phase only): the ceiling of the data")
    r.add_argument("--reference", help="structure to report the FSC against when the input holds no density: an "
                                       "MRC map or a PDB/mmCIF model (overrides [run] reference)")
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
