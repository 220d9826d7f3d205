"""MTIP checkpoints: one HDF5 file rewritten atomically after every generation.

The file holds the orientations, density, autocorrelation, grid size, history, the random
generator's exact state and the settings, so ``--resume`` continues bitwise where an
uninterrupted run would be. It is written to ``<path>.tmp`` and renamed, so a crash mid-write
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os


FORMAT = "spkernels-mtip-checkpoint-1"


def save(path, state: dict, config, *, voxel_size: float) -> None:
    """Write `state` (see :func:`spkernels.mtip.reconstruct.reconstruct`) atomically to `path`."""
    import h5py

    tmp = f"{path}.tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["generation"] = int(state["generation"])
        f.attrs["n_images"] = int(state["n_images"])
        f.attrs["M"] = int(state["M"])
        f.attrs["voxel_size"] = float(voxel_size)
        # PCG64 states are 128-bit integers: JSON keeps them exact.
        f.attrs["rng_state"] = json.dumps(state["rng_state"])
        f.attrs["history"] = json.dumps(state["history"])
        f.attrs["config"] = json.dumps(config.to_dict(), default=str)
        f.create_dataset("orientations", data=state["orientations"])
        f.create_dataset("rho", data=state["rho"])
        f.create_dataset("ac", data=state["ac"])
        f.flush()
        os.fsync(f.id.get_vfd_handle())
    os.replace(tmp, path)


def load(path, config=None) -> dict:
    """Read a checkpoint; with `config`, refuse one written with different settings."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not an spkernels MTIP checkpoint")
        saved_cfg = json.loads(f.attrs["config"])
        if config is not None:
            now = json.loads(json.dumps(config.to_dict(), default=str))
            if now != saved_cfg:
                diff = sorted(k for k in set(now) | set(saved_cfg) if now.get(k) != saved_cfg.get(k))
                raise ValueError(f"checkpoint {path} was written with different settings: {', '.join(diff)}")
        return {
            "generation": int(f.attrs["generation"]),
            "n_images": int(f.attrs["n_images"]),
            "M": int(f.attrs["M"]),
            "voxel_size": float(f.attrs["voxel_size"]),
            "rng_state": json.loads(f.attrs["rng_state"]),
            "history": json.loads(f.attrs["history"]),
            "config": saved_cfg,
            "orientations": f["orientations"][...],
            "rho": f["rho"][...],
            "ac": f["ac"][...],
        }
