"""asv benchmarks for spkernels: one ``bench_<family>.py`` per kernel family, plus ceilings.

Run from the repository root, e.g. ``asv run --config asv_benches/asv.conf.json --python=same
--quick``; see the README section "Checking a change for regressions". Shared helpers live in
:mod:`asv_benches.common`.
"""
