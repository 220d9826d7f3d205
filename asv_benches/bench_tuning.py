"""asv benchmarks of the autotuner: per family with knobs on this machine, tuned vs default.

``track_speedup_tuned``: the default configuration's time over the tuned one's, both measured
in the same process right after a search (:func:`spkernels.tuning.search.tune`, budget
``BUDGET_S`` per problem) on the family's ``small`` tuning problem (``tiny`` under
``SPK_BENCH_SMALL``, with a two-candidate search, so the suite's smoke run stays cheap). The
search keeps the default unless a candidate beats it when re-measured, so the ratio is >= 1 up
to timing noise; nothing is written to the machine's tuning cache.
Families without knobs on a backend (cg on the CPU, fsc everywhere) are skipped with the reason.
"""

from __future__ import annotations

import statistics

from . import common

#: problems per family: nufft has one per type (spreading and interpolation)
PROBLEMS = ["distance", "nufft1", "nufft2", "insertion", "cg"]
BUDGET_S = 20.0


class Tuning:
    params = (common.CPU_AND_GPU, PROBLEMS)
    param_names = ["backend", "problem"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, backend, problem):
        from spkernels.tuning import cli as tcli
        from spkernels.tuning import families

        common.require_backend(backend)
        family = "nufft" if problem.startswith("nufft") else problem
        sp = families.space(family, backend, int(problem[-1]) if family == "nufft" else 1)
        common.skip_unless(not sp.empty, f"{family} has no knob on {backend}: {sp.note}")
        probs = families.problems(family, backend, "tiny" if common.SMALL else "small")
        self.prob = probs[int(problem[-1]) - 1] if family == "nufft" else probs[0]
        quick = dict(max_configs=2, repeat=1) if common.SMALL else dict(budget_s=BUDGET_S, repeat=3)
        self.result = tcli.tune_problem(self.prob, store=False, **quick)

    def track_speedup_tuned(self, backend, problem):
        """Default time over tuned time, interleaved in this process (> 1: tuning helps)."""
        from spkernels.tuning.search import measure

        run, best, default = self.prob.runner, self.result.best, self.prob.space.default()
        if best == default:  # the search kept the default: the kernel runs exactly as untuned
            return 1.0
        td, tb = [], []
        for _ in range(1 if common.SMALL else 5):
            td.append(measure(lambda: run(default), 1))
            tb.append(measure(lambda: run(best), 1))
        return statistics.median(td) / statistics.median(tb)

    track_speedup_tuned.unit = "t(default)/t(tuned)"
