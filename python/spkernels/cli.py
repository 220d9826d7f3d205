"""The ``spkernels`` command line: ``spkernels info`` and the subcommands of each science module.

Errors in what the user gave (files, settings, arguments) are one line on stderr naming the file
and the field, with exit code 2; ``--debug`` (anywhere on the line) shows the traceback instead.
An unexpected failure is one line too, with exit code 1. Under ``mpiexec`` with more than one
rank, a rank that fails prints its line and aborts every rank (``MPI_Abort``), so a run never
hangs on a collective that a dead rank will not join.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from ._errors import BackendUnavailableError, MissingDependencyError

#: exit code for bad input (as argparse uses for bad arguments)
EXIT_USAGE = 2
#: exceptions that mean "the input (or an optional package) was missing or wrong", not
#: "spkernels is broken"
USER_ERRORS = (ValueError, TypeError, OSError, KeyError, BackendUnavailableError, MissingDependencyError)

# Subcommands that live in their own modules, each exposing add_parser(subparsers) that sets
# ``func`` on its parser. Only modules that exist are listed, and a failure to import one is
# an error the user sees, never a subcommand that silently goes missing.
_PLUGINS = ("spkernels.mtip.cli", "spkernels.cryoem.cli", "spkernels.bench.cli", "spkernels.hits.cli",
            "spkernels.tuning.cli")


def _cmd_info(args) -> int:
    from ._info import format_info, info

    d = info()
    print(json.dumps(d, indent=2, default=str) if args.json else format_info(d))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spkernels", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also accepted after "
                                                          "the subcommand)")
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


def add_detector_arguments(parser: argparse.ArgumentParser, *, binning: int) -> None:
    """The flat detector of the simulate commands: ``--pixels``, ``--width``, ``--distance`` and
    ``--binning`` (default `binning`), read back by :func:`detector_from_args`."""
    parser.add_argument("--pixels", type=int, default=128, help="detector pixels per side")
    parser.add_argument("--width", type=float, default=0.08, help="detector side in m")
    parser.add_argument("--distance", type=float, default=0.2, help="detector distance in m")
    parser.add_argument("--binning", type=int, default=binning, help="bin b x b pixels")


def detector_from_args(args):
    """The :class:`spkernels.geometry.Detector` that :func:`add_detector_arguments`'s options name."""
    from .geometry import Detector

    return Detector(args.pixels, args.distance, width=args.width, binning=args.binning)


def mpi_world():
    """``mpi4py.MPI.COMM_WORLD`` when this process was started by ``mpiexec`` with more than one
    rank (MPICH's ``PMI_SIZE``, Open MPI's ``OMPI_COMM_WORLD_SIZE``), else None: a serial run
    never imports mpi4py."""
    size = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE") or "1"
    try:
        if int(size) <= 1:
            return None
    except ValueError:
        return None
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise BackendUnavailableError(f"started under mpiexec with {size} ranks but mpi4py is missing "
                                      f"(install spkernels[mpi]): {exc}") from None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"missing {text}"
    if isinstance(exc, OSError) and exc.filename is not None and os.fspath(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


def main(argv=None) -> int:
    """Entry point of the ``spkernels`` console script; returns the exit code.

    0 on success, 2 for bad input or a missing optional package (one line on stderr, no
    traceback), 1 for an unexpected error; ``--debug`` re-raises instead, so the traceback shows.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    args.debug = debug
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print("spkernels: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        user = isinstance(exc, USER_ERRORS)
        code = EXIT_USAGE if user else 1
        comm = getattr(args, "comm", None)
        where = f" (rank {comm.Get_rank()} of {comm.Get_size()})" if comm is not None else ""
        kind = "error" if user else f"internal error {type(exc).__name__}"
        hint = "" if user else " (run with --debug for the traceback)"
        print(f"spkernels: {kind}{where}: {_one_line(exc)}{hint}", file=sys.stderr, flush=True)
        if comm is not None:  # the other ranks may wait in a collective for this one: stop them all
            sys.stdout.flush()
            comm.Abort(code)
        return code


if __name__ == "__main__":
    sys.exit(main())
