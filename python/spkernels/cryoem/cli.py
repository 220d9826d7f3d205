"""``spkernels cryoem ...`` subcommands: ``simulate``, ``reconstruct``, ``align``, ``refine``, ``demo``
(RELION STAR + MRC in and out)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import numpy as np

__all__ = ["add_parser"]


def _read_map(path):
    from ..io.mrc import read_mrc

    m = read_mrc(path)
    return np.asarray(m.data, dtype=np.float64), float(m.voxel_size[0])


def _cmd_simulate(args) -> int:
    from .simulate import simulate

    vol, vs = _read_map(args.map)
    vs = args.voxel_size or vs
    if not vs:
        raise SystemExit(f"{args.map} has no voxel size in its header: pass --voxel-size")
    t0 = time.perf_counter()
    p = simulate(vol, args.n, voxel_size=vs, snr=args.snr, shifts=args.max_shift, ctf=not args.no_ctf,
                 defocus=(args.defocus_min, args.defocus_max), seed=args.seed, backend=args.backend,
                 output=args.output)
    print(f"wrote {args.output} and its stack: {len(p)} particles of {p.box} px at {vs:g} Å, "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


def _report_half_maps(hm, out_dir, prefix=""):
    from ..io.mrc import write_mrc

    os.makedirs(out_dir, exist_ok=True)
    write_mrc(os.path.join(out_dir, f"{prefix}half1.mrc"), hm.half1, hm.voxel_size)
    write_mrc(os.path.join(out_dir, f"{prefix}half2.mrc"), hm.half2, hm.voxel_size)
    write_mrc(os.path.join(out_dir, f"{prefix}map.mrc"), hm.average, hm.voxel_size)
    hm.fsc.plot(os.path.join(out_dir, f"{prefix}fsc.png"), title="half-map FSC")
    return hm.resolution


def _cmd_reconstruct(args) -> int:
    from .particles import read_relion
    from .reconstruct import memory_estimate, reconstruct_fourier, reconstruct_half_maps

    p = read_relion(args.star)
    print(f"{len(p)} particles of {p.box} px; memory estimate {memory_estimate(p.box, args.pad) / 1e9:.2f} GB")
    t0 = time.perf_counter()
    kw = dict(pad=args.pad, ctf=not args.no_ctf, max_resolution=args.max_resolution, progress=not args.quiet)
    if args.half_maps:
        hm = reconstruct_half_maps(p, backend=args.backend, mask="particle" if args.particle_mask else None, **kw)
        res = _report_half_maps(hm, args.output)
        print(f"half maps in {args.output}: resolution {res} ({time.perf_counter() - t0:.1f} s)")
    else:
        from ..io.mrc import write_mrc

        r = reconstruct_fourier(p, backend=args.backend, **kw)
        write_mrc(args.output, r.volume, r.voxel_size)
        print(f"wrote {args.output} ({time.perf_counter() - t0:.1f} s on {r.backend})")
    return 0


def _cmd_align(args) -> int:
    from .align import align
    from .particles import read_relion, write_relion

    p = read_relion(args.star)
    ref, _ = _read_map(args.reference)
    t0 = time.perf_counter()
    res = align(p, ref, angular_step=args.angular_step, max_shift=args.max_shift, ctf=not args.no_ctf,
                max_resolution=args.max_resolution, backend=args.backend)
    write_relion(args.output, res.particles)
    print(f"wrote {args.output}: {len(p)} particles against {res.n_references} orientations, "
          f"median NCC {np.median(res.score):.3f} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_refine(args) -> int:
    from .align import refine
    from .particles import read_relion, write_relion

    p = read_relion(args.star)
    ref, _ = _read_map(args.reference)
    p2, hm = refine(p, ref, iterations=args.iterations, angular_step=args.angular_step, backend=args.backend,
                    max_shift=args.max_shift)
    os.makedirs(args.output, exist_ok=True)
    write_relion(os.path.join(args.output, "particles.star"), p2)
    res = _report_half_maps(hm, args.output)
    print(f"refined {len(p2)} particles: resolution {res}; outputs in {args.output}")
    return 0


def demo_map(box: int = 48, voxel_size: float = 4.0, seed: int = 0) -> np.ndarray:
    """The built-in particle (the MTIP demo assembly, about 150 Å) as a band-limited box³ map."""
    from ..mtip.density import GaussianDensity, band_limited_density
    from ..mtip.particle import demo_particle

    return band_limited_density(GaussianDensity.from_atoms(demo_particle(seed)), box, voxel_size)


def _sections(vol, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3), dpi=110)
    c = vol.shape[0] // 2
    for i, (img, name) in enumerate(((vol[c], "z"), (vol[:, c], "y"), (vol[:, :, c], "x"))):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(img, cmap="gray", origin="lower")
        ax.set_title(f"central section ⊥ {name}")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)


def _cmd_demo(args) -> int:
    from ..kernels.fsc import fsc
    from .reconstruct import reconstruct_half_maps
    from .simulate import simulate

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    os.makedirs(args.output, exist_ok=True)
    t0 = time.perf_counter()
    vol = demo_map(args.box, args.voxel_size)
    star = os.path.join(args.output, "particles.star")
    p = simulate(vol, args.n, voxel_size=args.voxel_size, snr=args.snr, shifts=0.0, seed=args.seed,
                 backend=args.backend, output=star)
    t1 = time.perf_counter()
    hm = reconstruct_half_maps(p, backend=args.backend, progress=not args.quiet)
    t2 = time.perf_counter()
    res = _report_half_maps(hm, args.output)
    truth = fsc(hm.average.astype(np.float64), vol, voxel_size=args.voxel_size, mask=hm.mask)
    _sections(hm.average, os.path.join(args.output, "sections.png"))
    report = {"particles": len(p), "box": args.box, "voxel_size": args.voxel_size, "snr": args.snr,
              "resolution_0143": res.angstrom, "reached": res.reached,
              "resolution_vs_truth_05": truth.resolution(0.5).angstrom, "simulate_s": t1 - t0,
              "reconstruct_s": t2 - t1, "backend": args.backend}
    with open(os.path.join(args.output, "report.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    print(f"demo: {len(p)} particles (box {args.box}, {args.voxel_size:g} Å, SNR {args.snr}, CTF 1-3 µm); "
          f"half-map resolution {res}; against the truth {truth.resolution(0.5)}; "
          f"simulate {t1 - t0:.0f} s, reconstruct {t2 - t1:.0f} s; outputs in {args.output}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``cryoem`` and its subcommands on the top-level ``spkernels`` parser."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = subparsers.add_parser("cryoem", help="cryo-EM: simulate particles, reconstruct, align, refine, demo")
    sub = p.add_subparsers(dest="cryoem_command", required=True)

    def common(q):
        q.add_argument("--backend", default="auto", help="kernel backend")
        q.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("simulate", help="simulate a RELION particle stack (STAR + MRC) from a map", formatter_class=fmt)
    s.add_argument("map", help="MRC map (z, y, x)")
    s.add_argument("output", help="STAR file to write (the stack goes beside it as .mrcs)")
    s.add_argument("-n", type=int, default=1000, help="particles")
    s.add_argument("--voxel-size", type=float, help="Å per voxel (default: the map header's)")
    s.add_argument("--snr", type=float, help="signal-to-noise ratio (default noiseless)")
    s.add_argument("--max-shift", type=float, default=0.0, help="maximum origin per axis, Å")
    s.add_argument("--defocus-min", type=float, default=10000.0, help="Å")
    s.add_argument("--defocus-max", type=float, default=30000.0, help="Å")
    s.add_argument("--no-ctf", action="store_true", help="no CTF modulation")
    s.add_argument("--seed", type=int, default=0)
    common(s)
    s.set_defaults(func=_cmd_simulate)

    r = sub.add_parser("reconstruct", help="direct Fourier reconstruction of a STAR particle set", formatter_class=fmt)
    r.add_argument("star")
    r.add_argument("-o", "--output", required=True, help="MRC map, or a folder with --half-maps")
    r.add_argument("--half-maps", action="store_true", help="reconstruct half maps, FSC plot and resolution")
    r.add_argument("--particle-mask", action="store_true",
                   help="with --half-maps: FSC under a soft mask fitted to the particle, corrected by phase "
                        "randomisation (RELION post-processing), instead of a soft sphere")
    r.add_argument("--pad", type=int, default=2)
    r.add_argument("--max-resolution", type=float, help="Å")
    r.add_argument("--no-ctf", action="store_true", help="ignore the CTF")
    common(r)
    r.set_defaults(func=_cmd_reconstruct)

    a = sub.add_parser("align", help="projection matching against a reference map", formatter_class=fmt)
    a.add_argument("star")
    a.add_argument("--reference", required=True, help="MRC map of the particles' box and pixel size")
    a.add_argument("-o", "--output", required=True, help="STAR file with the new poses")
    a.add_argument("--angular-step", type=float, default=15.0, help="degrees")
    a.add_argument("--max-shift", type=float, default=0.0, help="Å")
    a.add_argument("--max-resolution", type=float, help="Å")
    a.add_argument("--no-ctf", action="store_true")
    common(a)
    a.set_defaults(func=_cmd_align)

    f = sub.add_parser("refine", help="iterate align and half-map reconstruction", formatter_class=fmt)
    f.add_argument("star")
    f.add_argument("--reference", required=True)
    f.add_argument("-o", "--output", required=True, help="output folder")
    f.add_argument("--iterations", type=int, default=3)
    f.add_argument("--angular-step", type=float, default=15.0)
    f.add_argument("--max-shift", type=float, default=0.0)
    common(f)
    f.set_defaults(func=_cmd_refine)

    d = sub.add_parser("demo", help="simulate the built-in particle with CTF and noise, reconstruct half maps, "
                                    "report the resolution", formatter_class=fmt)
    d.add_argument("-o", "--output", default="cryoem-demo", help="output folder")
    d.add_argument("-n", type=int, default=3000, help="particles")
    d.add_argument("--box", type=int, default=48)
    d.add_argument("--voxel-size", type=float, default=4.0)
    d.add_argument("--snr", type=float, default=0.03)
    d.add_argument("--seed", type=int, default=0)
    common(d)
    d.set_defaults(func=_cmd_demo)
