"""A small STAR file reader and writer (the subset RELION writes: ``data_`` blocks holding
either ``key value`` pairs or one ``loop_``), so no pandas is needed.

Blocks are read into ``{name: {column: ndarray}}``; numeric columns become int64 or float64,
the others stay strings. Quoted values (``'...'`` or ``"..."``) may hold spaces.
"""

from __future__ import annotations

import os
import shlex

import numpy as np

__all__ = ["read_star", "write_star"]


def _convert(values):
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


def _split(line):
    if "'" in line or '"' in line:
        return shlex.split(line, posix=True)
    return line.split()


def read_star(path) -> dict:
    """Read every data block of a STAR file: ``{block_name: {label: column array}}``.

    A block of ``key value`` pairs gives length-1 columns. Raises ValueError naming the file and
    line on a malformed row (wrong number of values in a loop).
    """
    blocks: dict = {}
    name = None
    labels: list = []
    rows: list = []
    in_loop = False
    pairs: dict = {}

    def flush():
        nonlocal labels, rows, in_loop, pairs
        if name is None:
            return
        if in_loop:
            cols = list(zip(*rows)) if rows else [[] for _ in labels]
            blocks[name] = {lab: _convert(list(c)) for lab, c in zip(labels, cols)}
        elif pairs:
            blocks[name] = {k: _convert([v]) for k, v in pairs.items()}
        else:
            blocks.setdefault(name, {})
        labels, rows, in_loop, pairs = [], [], False, {}

    with open(os.fspath(path), encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("'") else raw.strip()
            if not line:
                continue
            if line.startswith("data_"):
                flush()
                name = line[5:]
                continue
            if line == "loop_":
                in_loop = True
                continue
            if line.startswith("_"):
                parts = _split(line)
                label = parts[0][1:]
                if in_loop and not rows:
                    labels.append(label)
                elif len(parts) >= 2:
                    pairs[label] = parts[1]
                else:
                    raise ValueError(f"{path}:{lineno}: label {label!r} has no value")
                continue
            if in_loop:
                vals = _split(line)
                if len(vals) != len(labels):
                    raise ValueError(f"{path}:{lineno}: {len(vals)} values for {len(labels)} columns")
                rows.append(vals)
    flush()
    return blocks


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6f}"
    s = str(v)
    return f'"{s}"' if (" " in s or not s) else s


def write_star(path, blocks: dict) -> None:
    """Write ``{block_name: {label: column}}`` as loops (written beside `path`, then renamed)."""
    p = os.fspath(path)
    tmp = p + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("# written by spkernels.cryoem\n")
        for name, cols in blocks.items():
            fh.write(f"\ndata_{name}\n\nloop_\n")
            labels = list(cols)
            for i, lab in enumerate(labels, 1):
                fh.write(f"_{lab} #{i}\n")
            n = len(next(iter(cols.values()))) if cols else 0
            columns = [np.asarray(cols[lab]) for lab in labels]
            for c, lab in zip(columns, labels):
                if len(c) != n:
                    raise ValueError(f"block {name!r}: column {lab!r} has {len(c)} rows, expected {n}")
            for r in range(n):
                fh.write(" ".join(_fmt(c[r]) for c in columns) + "\n")
            fh.write("\n")
    os.replace(tmp, p)
