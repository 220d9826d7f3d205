"""The Sphinx documentation builds warning-free (``-W``) when Sphinx and numpydoc are installed
(``pip install ".[docs]"``), and its API reference has a section for every public module of the
documented packages (docs/conf.py writes those pages at each build)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    out = tmp_path / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert 'id="module-spkernels.finufft"' in (out / "api" / "finufft.html").read_text()
    fft_page = (out / "api" / "fft.html").read_text()
    assert 'id="module-spkernels.fft"' in fft_page and 'id="spkernels.fft.advise"' in fft_page
    for pkg in ("kernels", "cryoem", "mtip", "io", "geometry", "tuning"):
        html = (out / "api" / f"{pkg}.html").read_text()
        mod = importlib.import_module(f"spkernels.{pkg}")
        for info in pkgutil.iter_modules(mod.__path__):
            if not info.name.startswith("_"):
                assert f'id="module-spkernels.{pkg}.{info.name}"' in html, f"{pkg}.{info.name} is not documented"
