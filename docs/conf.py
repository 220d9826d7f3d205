"""Sphinx configuration of the spkernels documentation (build: ``sphinx-build -W -b html docs docs/_build``)."""

import os
import sys

# the working tree's package first (ci/dev-build.sh puts the compiled core next to it)
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "python")))

#: the packages whose every public module gets an API page section (written below at each build,
#: so a new module cannot go missing from the reference); title per package
API_PACKAGES = {
    "kernels": "Kernels (spkernels.kernels)",
    "cryoem": "Cryo-EM (spkernels.cryoem)",
    "mtip": "MTIP (spkernels.mtip)",
    "io": "File formats (spkernels.io)",
    "geometry": "Geometry (spkernels.geometry)",
    "tuning": "Autotuning (spkernels.tuning)",
}


def _write_api_pages():
    """docs/api/<package>.rst: the package's docstring, then each public submodule's members
    (only those defined there: re-exports are documented where they live)."""
    import importlib
    import pkgutil

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api")
    for pkg, title in API_PACKAGES.items():
        mod = importlib.import_module(f"spkernels.{pkg}")
        subs = sorted(m.name for m in pkgutil.iter_modules(mod.__path__) if not m.name.startswith("_"))
        lines = [title, "=" * len(title), "", f".. automodule:: spkernels.{pkg}", "   :no-members:", ""]
        for sub in subs:
            name = f"spkernels.{pkg}.{sub}"
            lines += [f"``{name}``", "-" * (len(name) + 4), "", f".. automodule:: {name}", "   :members:",
                      "   :show-inheritance:", "   :ignore-module-all:", ""]
        text = "\n".join(lines)
        path = os.path.join(here, f"{pkg}.rst")
        if not os.path.exists(path) or open(path).read() != text:  # unchanged files keep Sphinx's cache
            with open(path, "w") as fh:
                fh.write(text)


_write_api_pages()

project = "spkernels"
author = "spkernels developers"
copyright = "spkernels developers"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "numpydoc", "sphinx.ext.intersphinx"]
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the docstrings say the types
numpydoc_show_class_members = False  # members come from autodoc, not numpydoc's autosummary tables
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
intersphinx_mapping = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"


# The docstrings are plain text first: |s| there is an absolute value, not a reStructuredText
# substitution. Escape the bars of such spans (outside ``literals``) instead of failing the build.
import re  # noqa: E402

_ABS = re.compile(r"(?<![|`\w])\|([^|`\s][^|`]*?)\|(?![|`])")
_LITERAL = re.compile(r"(``.*?``)")


def _literal_abs(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        bare = line.strip()
        if "|" not in line or bare.startswith("+") or (bare.startswith("|") and bare.endswith("|")):  # tables
            continue
        parts = _LITERAL.split(line)
        lines[i] = "".join(p if p.startswith("``") else _ABS.sub(r"\\|\1\\|", p) for p in parts)


def setup(app):
    app.connect("autodoc-process-docstring", _literal_abs)
