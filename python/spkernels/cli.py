"""The ``spkernels`` command line: ``spkernels info`` and the subcommands of each science module."""

from __future__ import annotations

import argparse
import importlib
import json
import sys

# Subcommands that live in their own modules, each exposing add_parser(subparsers) that sets
# ``func`` on its parser. Only modules that exist are listed, and a failure to import one is
# an error the user sees, never a subcommand that silently goes missing.
_PLUGINS = ("spkernels.mtip.cli", "spkernels.bench.cli")


def _cmd_info(args) -> int:
    from ._info import format_info, info

    d = info()
    print(json.dumps(d, indent=2, default=str) if args.json else format_info(d))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spkernels", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    pi = sub.add_parser("info", help="what was compiled, visible GPUs, usable backends")
    pi.add_argument("--json", action="store_true", help="machine-readable output")
    pi.set_defaults(func=_cmd_info)
    for modname in _PLUGINS:
        try:
            mod = importlib.import_module(modname)
        except ImportError as exc:
            raise ImportError(f"the `spkernels` command cannot load its subcommands from {modname}: {exc}") from exc
        mod.add_parser(sub)
    return p


def main(argv=None) -> int:
    """Entry point of the ``spkernels`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
