"""MTIP checkpoints: one HDF5 file rewritten atomically after every generation.

The file holds the orientations, density, autocorrelation, grid size, history, the random
generator's exact state and the settings, so ``--resume`` continues bitwise where an
uninterrupted run would be. It is written to ``<path>.tmp`` and renamed, so a crash mid-write
leaves the previous checkpoint intact.

It also holds SHA-256 fingerprints of the data (images, pixel s-vectors, mask), of the settings
and of its own arrays and generator state (HDF5 keeps no checksums, so a flipped byte would
otherwise load). Resuming with other data is refused even when the image count matches, and
resuming with other settings names the settings that differ. The run's mode (orientations held
fixed or searched; multi-hit rejection or not) is stored too, and a resume in the other mode is
refused: it would silently hold a searched run's orientations fixed, or search from a fixed one. A file that is not a readable
checkpoint (truncated, corrupted, another format, inconsistent fields) is a ``ValueError``
naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref

import numpy as np

FORMAT = "spkernels-mtip-checkpoint-1"

_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def data_fingerprint(data) -> str:
    """SHA-256 (hex) of an :class:`~spkernels.mtip.data.SPIData`: its images, s-vectors and mask
    (shape, dtype and bytes of each), computed once per object."""
    try:
        return _FINGERPRINTS[data]
    except (KeyError, TypeError):
        pass
    h = hashlib.sha256()
    for name in ("intensities", "s", "mask"):
        a = getattr(data, name, None)
        if a is None:
            h.update(f"{name}:none;".encode())
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.view(np.uint8).reshape(-1).data)
    fp = h.hexdigest()
    try:
        _FINGERPRINTS[data] = fp
    except TypeError:
        pass
    return fp


def _state_digest(rng_state: str, history: str, *arrays) -> str:
    h = hashlib.sha256(rng_state.encode() + b"\0" + history.encode())
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float64)
        h.update(f"{a.shape};".encode())
        h.update(a.view(np.uint8).reshape(-1).data)
    return h.hexdigest()


def _config_dict(config) -> dict:
    return json.loads(json.dumps(config.to_dict(), default=str))


def config_fingerprint(config) -> str:
    """SHA-256 (hex) of the settings as stored (sorted-key JSON of ``config.to_dict()``)."""
    return hashlib.sha256(json.dumps(_config_dict(config), sort_keys=True).encode()).hexdigest()


#: the run modes a checkpoint records, with the value a file written before they were recorded
#: stands for (only searched orientations without multi-hit rejection existed then)
RUN_MODE_DEFAULTS = {"fixed_orientations": False, "multi_hit_rejection": False}


def _mode_name(key, value) -> str:
    if key == "fixed_orientations":
        return "orientations held fixed (`fixed_orientations`, --fixed-orientations)" if value else \
            "orientations searched (no `fixed_orientations`)"
    return "multi-hit rejection (`hits`, [run] hits)" if value else "no multi-hit rejection (no `hits`)"


def save(path, state: dict, config, *, voxel_size: float, data=None, run_mode=None) -> None:
    """Write `state` (see :func:`spkernels.mtip.reconstruct.reconstruct`) atomically to `path`;
    with `data`, store its fingerprint so a resume with other data is refused; `run_mode` (keys
    of :data:`RUN_MODE_DEFAULTS`, missing ones at their defaults) is stored so a resume in
    another mode is refused."""
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
        f.attrs["config_sha256"] = config_fingerprint(config)
        if data is not None:
            f.attrs["data_sha256"] = data_fingerprint(data)
        f.attrs["run_mode"] = json.dumps(_run_mode(run_mode))
        f.create_dataset("orientations", data=state["orientations"])
        f.create_dataset("rho", data=state["rho"])
        f.create_dataset("ac", data=state["ac"])
        # HDF5 keeps no checksums: one over the arrays and the generator state lets load()
        # refuse a file whose bytes changed after it was written.
        f.attrs["state_sha256"] = _state_digest(f.attrs["rng_state"], f.attrs["history"], state["orientations"],
                                                state["rho"], state["ac"])
        f.flush()
        os.fsync(f.id.get_vfd_handle())
    os.replace(tmp, path)


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file (and the field)."""


def _bad(path, what) -> CheckpointError:
    return CheckpointError(f"checkpoint {os.fspath(path)}: {what}")


def _run_mode(run_mode) -> dict:
    mode = dict(RUN_MODE_DEFAULTS)
    for k, v in (run_mode or {}).items():
        if k not in mode:
            raise ValueError(f"`run_mode` has no key {k!r} (known: {', '.join(RUN_MODE_DEFAULTS)})")
        mode[k] = bool(v)
    return mode


def load(path, config=None, *, data=None, run_mode=None) -> dict:
    """Read a checkpoint; with `config`, refuse one written with different settings, with
    `run_mode`, one written in another mode (see :func:`save`), and with `data`, one written for
    other data (fingerprints). Raises ``ValueError`` naming the file (and the field) for a
    missing, unreadable, truncated, foreign or inconsistent file."""
    import h5py

    p = os.fspath(path)
    if not os.path.exists(p):
        raise _bad(p, "no such file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise _bad(p, f"not a readable HDF5 file (truncated or corrupted?): {exc}") from None
    try:
        with f:
            if f.attrs.get("format") != FORMAT:
                raise _bad(p, f"not an spkernels MTIP checkpoint (attribute `format` is not {FORMAT!r})")
            out = _read(p, f)
    except CheckpointError:
        raise
    except Exception as exc:  # HDF5 on damaged metadata or data: OSError, RuntimeError, KeyError, ...
        raise _bad(p, f"cannot be read (truncated or corrupted?): {type(exc).__name__}: {exc}") from None
    if config is not None:
        now = _config_dict(config)
        saved = out["config"]
        if now != saved:
            diff = sorted(k for k in set(now) | set(saved) if now.get(k) != saved.get(k))
            raise _bad(p, f"was written with different settings: {', '.join(diff)}")
    if run_mode is not None:
        now = _run_mode(run_mode)
        for k in RUN_MODE_DEFAULTS:
            if out["run_mode"][k] != now[k]:
                raise _bad(p, f"was written with {_mode_name(k, out['run_mode'][k])}; this run has "
                              f"{_mode_name(k, now[k])}: resume in the mode the run started in")
    if data is not None:
        if out["n_images"] != data.n_images:
            raise _bad(p, f"was written for {out['n_images']} images, the data hold {data.n_images} (`n_images`)")
        if out["data_sha256"] is not None and out["data_sha256"] != data_fingerprint(data):
            raise _bad(p, "was written for other data: the fingerprint of the images, s-vectors and mask "
                          "(`data_sha256`) differs")
        if out["orientations"].shape != (data.n_images, 4):
            raise _bad(p, f"`orientations` has shape {out['orientations'].shape}, expected ({data.n_images}, 4)")
    return out


def _read(p, f) -> dict:
    def attr(name, conv):
        if name not in f.attrs:
            raise _bad(p, f"missing attribute `{name}`")
        try:
            return conv(f.attrs[name])
        except (TypeError, ValueError) as exc:
            raise _bad(p, f"attribute `{name}` is unreadable: {exc}") from None

    def dataset(name):
        if name not in f:
            raise _bad(p, f"missing dataset `{name}`")
        a = np.asarray(f[name][...])
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise _bad(p, f"dataset `{name}` must hold finite floats")
        return a

    def _read_mode(v):
        mode = json.loads(v)
        if not isinstance(mode, dict) or set(mode) != set(RUN_MODE_DEFAULTS) or \
                not all(isinstance(x, bool) for x in mode.values()):
            raise ValueError(f"expected {{{', '.join(RUN_MODE_DEFAULTS)}: true/false}}, got {v!r}")
        return mode

    def as_int(v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"expected an integer, got {v!r}")
        return int(v)

    out = {
        "generation": attr("generation", as_int),
        "n_images": attr("n_images", as_int),
        "M": attr("M", as_int),
        "voxel_size": attr("voxel_size", float),
        "rng_state": attr("rng_state", json.loads),
        "history": attr("history", json.loads),
        "config": attr("config", json.loads),
        "data_sha256": str(f.attrs["data_sha256"]) if "data_sha256" in f.attrs else None,
        "state_sha256": str(f.attrs["state_sha256"]) if "state_sha256" in f.attrs else None,
        "run_mode": attr("run_mode", _read_mode) if "run_mode" in f.attrs else dict(RUN_MODE_DEFAULTS),
        "orientations": dataset("orientations"),
        "rho": dataset("rho"),
        "ac": dataset("ac"),
    }
    if out["state_sha256"] is not None:
        digest = _state_digest(str(f.attrs["rng_state"]), str(f.attrs["history"]), out["orientations"], out["rho"],
                               out["ac"])
        if digest != out["state_sha256"]:
            raise _bad(p, "its arrays or generator state changed after it was written (`state_sha256` differs): "
                          "the file is corrupted")
    gen, hist, M = out["generation"], out["history"], out["M"]
    if not isinstance(hist, list) or gen < 1 or gen != len(hist):
        n = len(hist) if isinstance(hist, list) else "no"
        raise _bad(p, f"`generation` = {gen} does not match the {n} generations in `history`")
    if M < 1 or out["rho"].shape != (M, M, M) or out["ac"].shape != (M, M, M):
        raise _bad(p, f"`rho` {out['rho'].shape} and `ac` {out['ac'].shape} must both be (M, M, M) with `M` = {M}")
    if out["n_images"] < 1 or out["orientations"].shape != (out["n_images"], 4):
        raise _bad(p, f"`orientations` has shape {out['orientations'].shape}, expected (`n_images` = "
                      f"{out['n_images']}, 4)")
    if not (np.isfinite(out["voxel_size"]) and out["voxel_size"] > 0):
        raise _bad(p, f"`voxel_size` = {out['voxel_size']} must be positive")
    if not isinstance(out["rng_state"], dict) or "state" not in out["rng_state"]:
        raise _bad(p, "`rng_state` is not a NumPy bit generator state")
    return out
