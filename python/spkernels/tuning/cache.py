"""The per-machine store of tuned configurations (and measured FFT sizes).

One JSON file, ``~/.cache/spkernels/tuning.json`` unless ``SPK_TUNING_CACHE`` names another
path. Its ``entries`` map a key to a record::

    key    = "<machine>|<build>|<family>|<backend>|<precision>|<size class>"
    record = {"config": {...}, "time_s": float, "default_time_s": float, "created": iso8601, ...}

``machine`` is :func:`spkernels.bench.machine.machine_name` (the GPU's slug, or the CPU core
count), ``build`` the package version and the compiled CUDA architectures, so a new GPU, a new
build or another core count never reuses a stale result. The file is read once per process
(then every lookup is a dict access), written atomically (a temporary file in the same folder,
then ``os.replace``), and a file that cannot be read or parsed, or an entry of the wrong shape, is
ignored with one log line: tuning can make a kernel faster, never make it fail.

``SPK_TUNING=off`` makes every lookup return None, so kernels run their defaults.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
import threading
from pathlib import Path

__all__ = ["cache_path", "enabled", "build_id", "machine", "make_key", "lookup", "record", "store", "entries",
           "clear", "reload", "FORMAT"]

FORMAT = 1  # bumped when the record layout changes; files of another format are ignored

_log = logging.getLogger("spkernels.tuning")
_lock = threading.Lock()
_state: dict = {"path": None, "entries": None}
_ident: dict = {}  # machine name and build id, found once per process


def cache_path() -> Path:
    """The cache file: ``$SPK_TUNING_CACHE`` or ``~/.cache/spkernels/tuning.json``.

    Rebuilt only when one of the variables it depends on changes (every kernel call asks).
    """
    env = os.environ
    key = (env.get("SPK_TUNING_CACHE", ""), env.get("XDG_CACHE_HOME", ""), env.get("HOME", ""))
    memo = _ident.get("path")
    if memo is not None and memo[0] == key:
        return memo[1]
    if key[0].strip():
        path = Path(key[0].strip()).expanduser()
    else:
        base = key[1].strip() or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "spkernels" / "tuning.json"
    _ident["path"] = (key, path)
    return path


def enabled() -> bool:
    """False when ``SPK_TUNING`` is ``off`` (or ``0``/``false``/``no``): kernels use their defaults."""
    return os.environ.get("SPK_TUNING", "on").strip().lower() not in ("off", "0", "false", "no")


def machine() -> str:
    """The machine part of a key (the benchmark harness's machine name).

    Asked once per process (and again only when ``SPK_MACHINE`` changes): finding the GPU's name
    can start ``nvidia-smi``, which a per-call lookup must not.
    """
    from ..bench.machine import machine_name

    forced = os.environ.get("SPK_MACHINE", "").strip()
    memo = _ident.get("machine")
    if memo is None or memo[0] != forced:
        memo = _ident["machine"] = (forced, machine_name())
    return memo[1]


def build_id() -> str:
    """The build part of a key: package version, plus the CUDA architectures when compiled (once per process)."""
    if "build" not in _ident:
        _ident["build"] = _build_id()
    return _ident["build"]


def _build_id() -> str:
    from .. import __version__
    from ..backends import core

    mod = core()
    archs = ""
    if mod is not None:
        bi = mod.build_info()
        if bi.get("cuda"):
            archs = "+sm" + ",".join(str(a) for a in bi.get("cuda_architectures", ()))
    return f"{__version__}{archs}"


def make_key(family: str, backend: str, precision: str, size_class: str) -> str:
    """The key of one tuned result on this machine and build."""
    parts = (machine(), build_id(), family, backend, str(precision), str(size_class))
    for p in parts:
        if "|" in p:
            raise ValueError(f"a tuning key part may not contain '|': {p!r}")
    return "|".join(parts)


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        _log.warning("spkernels: ignoring unreadable tuning cache %s (%s)", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
        _log.warning("spkernels: ignoring tuning cache %s of an unknown format", path)
        return {}
    good = {}
    for k, rec in data["entries"].items():
        if isinstance(k, str) and isinstance(rec, dict) and isinstance(rec.get("config"), dict):
            good[k] = rec
        else:
            _log.warning("spkernels: ignoring malformed tuning cache entry %r in %s", k, path)
    return good


def _entries() -> dict:
    path = cache_path()
    with _lock:
        if _state["entries"] is None or _state["path"] != path:
            _state["entries"] = _read(path)
            _state["path"] = path
        return _state["entries"]


def reload() -> None:
    """Forget what was read, so the next lookup reads the file again (after another process wrote it)."""
    with _lock:
        _state["entries"] = None
        _state["path"] = None


def lookup(family: str, backend: str, precision: str, size_class: str) -> dict | None:
    """The tuned configuration for this machine and build, or None (none stored, or tuning off).

    After the first call of a process this is a dictionary access; no file is read.
    """
    if not enabled():
        return None
    ents = _entries()
    if not ents:  # the common case without any tuning: no key to build
        return None
    rec = ents.get(make_key(family, backend, precision, size_class))
    return None if rec is None else dict(rec["config"])


def record(family: str, backend: str, precision: str, size_class: str) -> dict | None:
    """The whole stored record (config, times, date), or None."""
    rec = _entries().get(make_key(family, backend, precision, size_class))
    return None if rec is None else dict(rec)


def store(family: str, backend: str, precision: str, size_class: str, config: dict, **fields) -> str:
    """Store ``config`` (JSON-serialisable) with extra ``fields`` (times, candidates tried, ...).

    The file is re-read first (another process may have added entries), then replaced
    atomically. Returns the key.
    """
    json.dumps(config)  # fail here, not half way through writing
    key = make_key(family, backend, precision, size_class)
    path = cache_path()
    rec = {"config": dict(config), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           **fields}
    with _lock:
        current = _read(path)
        current[key] = rec
        _write(path, current)
        _state["entries"] = current
        _state["path"] = path
    return key


def _write(path: Path, entries_: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tuning-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"format": FORMAT, "entries": entries_}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def entries(all_machines: bool = False) -> dict:
    """Stored records by key: this machine's and build's (default) or every one in the file."""
    ents = _entries()
    if all_machines:
        return dict(ents)
    prefix = f"{machine()}|{build_id()}|"
    return {k: v for k, v in ents.items() if k.startswith(prefix)}


def clear(family: str | None = None) -> int:
    """Remove this machine's entries (of one family, or all); returns how many were removed."""
    path = cache_path()
    prefix = f"{machine()}|{build_id()}|"
    with _lock:
        current = _read(path)
        gone = [k for k in current if k.startswith(prefix) and (family is None or k.split("|")[2] == family)]
        for k in gone:
            del current[k]
        if gone:
            _write(path, current)
        _state["entries"] = current
        _state["path"] = path
    return len(gone)
