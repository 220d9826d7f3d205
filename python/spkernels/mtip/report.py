"""Outputs of an MTIP run: density (MRC), FSC curve and central sections (PNG), a short report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("spkernels.mtip.report")


def plot_sections(rho: np.ndarray, path, *, title: str = "central sections") -> None:
    """Write the three central sections (z, y, x) of a volume side by side as a PNG."""
    from matplotlib.figure import Figure

    c = [n // 2 for n in rho.shape]
    fig = Figure(figsize=(9, 3.2))
    for i, (img, name) in enumerate(((rho[c[0]], "z = 0"), (rho[:, c[1]], "y = 0"), (rho[:, :, c[2]], "x = 0"))):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(img, cmap="gray", origin="lower")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def write_outputs(result, out_dir, *, reference=None, reference_voxel_size=None, true_orientations=None,
                  backend: str = "auto") -> dict:
    """Write ``density.mrc``, ``sections.png``, ``fsc.png`` (with a reference), ``report.json`` and
    ``report.md`` under `out_dir`; return the report as a dict.

    Parameters
    ----------
    result : MTIPResult
    reference : array, optional
        True density (e.g. the simulation's band-limited ground truth) for the FSC resolution.
    reference_voxel_size : float, optional
        Its voxel size in Å.
    true_orientations : array (N, 4), optional
        For the median orientation error.
    """
    from ..io import write_mrc
    from .metrics import orientation_errors

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_mrc(out / "density.mrc", result.rho.astype(np.float32), result.voxel_size)
    plot_sections(result.rho, out / "sections.png", title=f"MTIP density, voxel {result.voxel_size:.2f} Å")
    rep = {"voxel_size_angstrom": result.voxel_size, "grid": list(result.rho.shape),
           "generations": len(result.history), "history": result.history}
    if getattr(result, "size_estimate", None) is not None:
        rep["size_estimate"] = result.size_estimate
    if getattr(result, "stages", None) is not None:
        rep["stages"] = result.stages
    if getattr(result, "starts", None) is not None:
        rep["starts"] = result.starts
    if result.history:
        rep["seconds_total"] = float(sum(sum(h["seconds"].values()) for h in result.history))
    if true_orientations is not None:
        err = orientation_errors(result.orientations, true_orientations)
        rep["median_orientation_error_deg"] = float(np.median(err))
    if reference is not None:
        from .resolution import resolution

        r = resolution(result.rho, result.voxel_size, reference, reference_voxel_size, backend=backend)
        rep["fsc_resolution_angstrom"] = float(r.resolution.angstrom)
        rep["fsc_resolution_reached"] = bool(r.resolution.reached)
        rep["alignment_cc"] = r.alignment.cc
        rep["inverted_hand"] = r.alignment.inverted
        r.fsc.plot(out / "fsc.png", thresholds=(0.5,), title=f"FSC vs reference: {r.resolution}")
        rep["fsc"] = {"frequency": r.fsc.frequency.tolist(), "fsc": np.nan_to_num(r.fsc.fsc).tolist()}
    (out / "report.json").write_text(json.dumps(rep, indent=1, default=float))
    (out / "report.md").write_text(format_report(rep))
    return rep


def format_report(rep: dict) -> str:
    """Markdown summary: resolution, orientation error, particle size and how it was found, the
    stages (generations run, why each ended), a table of time per step per generation."""
    lines = ["# MTIP reconstruction", ""]
    if "fsc_resolution_angstrom" in rep:
        mark = "" if rep["fsc_resolution_reached"] else " (FSC never fell below 0.5: better than this)"
        lines.append(f"- FSC-0.5 resolution against the reference: **{rep['fsc_resolution_angstrom']:.2f} Å**{mark}")
        lines.append(f"- correlation after alignment: {rep['alignment_cc']:.3f}"
                     f" ({'inverted' if rep['inverted_hand'] else 'same'} hand)")
    if "median_orientation_error_deg" in rep:
        lines.append(f"- median orientation error: {rep['median_orientation_error_deg']:.2f}°")
    lines.append(f"- grid {rep['grid'][0]}³, voxel {rep['voxel_size_angstrom']:.2f} Å, "
                 f"{rep['generations']} generations, {rep.get('seconds_total', 0):.0f} s in the steps")
    size = rep.get("size_estimate")
    if size:
        lines.append(f"- particle diameter {size['diameter']:.1f} Å by {size['method']} ({size['reason']})")
    if rep.get("starts"):
        lines.append(f"- {len(rep['starts'])} starts, the lowest final phasing error kept: " + "; ".join(
            f"seed {st['seed']}: {st['phasing_error']:.4g}{' (kept)' if st['chosen'] else ''}" for st in rep["starts"]))
    if rep.get("stages"):
        lines += ["", "| stage | res. limit (Å) | generations | why it ended |", "|---|---|---|---|"]
        for st in rep["stages"]:
            lines.append(f"| {st['stage']} | {st['resolution_limit']:.1f} | {st['generations']} | {st['reason']} |")
    lines += ["", "| gen | res. limit (Å) | M | refs | kept current | CG its | median err (°) | match s | merge s | phase s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for h in rep["history"]:
        s = h["seconds"]
        kept = "" if h.get("kept_current") is None else f"{h['kept_current']:.2f}"
        err = h.get("median_orientation_error_deg")
        lines.append(f"| {h['generation']} | {h['resolution_limit']:.1f} | {h['M']} | {h['n_references']} | {kept} | "
                     f"{h['cg_iterations']} | {'' if err is None else f'{err:.1f}'} | {s.get('match', 0):.1f} | "
                     f"{s.get('merge', 0):.1f} | {s.get('phase', 0):.1f} |")
    return "\n".join(lines) + "\n"
