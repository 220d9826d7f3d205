"""spkernels.fft: the smooth-size rule against brute-force factorisation, the measured advice's
choice (with stand-in timings, so the selection logic is tested without timing noise), its cache
round trip through spkernels.tuning.cache, SPK_TUNING=off, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spkernels import fft
from spkernels.tuning import cache


def _largest_prime(n: int) -> int:
    """Largest prime factor by trial division (1 for n = 1)."""
    big, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            big, n = p, n // p
        p += 1
    return max(big, n) if n > 1 else big


def _brute(n, smooth, even):
    m = n
    while _largest_prime(m) > smooth or (even and m % 2):
        m += 1
    return m


@pytest.mark.parametrize("smooth", [2, 3, 5, 7, 11, 13])
@pytest.mark.parametrize("even", [False, True])
def test_good_size_against_brute_force(smooth, even, rng):
    ns = list(range(1, 400)) + [int(v) for v in rng.integers(400, 20_000, 60)]
    for n in ns:
        assert fft.good_size(n, smooth=smooth, even=even, backend="cpu") == _brute(n, smooth, even), (n, smooth)


def test_good_size_properties(rng):
    for n in rng.integers(1, 10**6, 200):
        n = int(n)
        m = fft.good_size(n)
        assert m >= n and _largest_prime(m) <= fft.DEFAULT_SMOOTH["cpu"]
        assert fft.good_size(m) == m  # a good size is its own answer
        assert fft.is_smooth(m, 7) and fft.is_smooth(m, 7) == (_largest_prime(m) <= 7)
    # the sizes of the issue: 2N = 138 = 2·3·23 at M = 69; finufft's fine-grid rule is even 5-smooth
    assert fft.good_size(137) == fft.good_size(138) == 140
    assert fft.good_size(276, smooth=5, even=True) == 288
    assert fft.good_size(139, even=True, smooth=11) == 140
    # huge sizes answer at once and are right
    n = 10**18 + 7  # below MAX_LENGTH = 2**63
    for smooth in (5, 7, 11):
        m = fft.good_size(n, smooth=smooth)
        assert m >= n and m < 2 * n and _smooth_by(m, smooth)


def _smooth_by(m, smooth):
    for p in (2, 3, 5, 7, 11, 13):
        if p <= smooth:
            while m % p == 0:
                m //= p
    return m == 1


def test_backend_names_map_to_libraries():
    for b in ("cpu", "numpy", "numba-cpu", "cuda", "numba-cuda", "auto"):
        assert fft.good_size(137, backend=b) == 140
    with pytest.raises(ValueError, match="`backend`"):
        fft.good_size(10, backend="fftw")
    with pytest.raises(TypeError, match="`backend`"):
        fft.good_size(10, backend=3)


def test_bad_input():
    for bad in (0, -3):
        with pytest.raises(ValueError, match="`n`"):
            fft.good_size(bad)
    for bad in (2.5, True, "12", None):
        with pytest.raises(TypeError, match="`n`"):
            fft.good_size(bad)
    with pytest.raises(ValueError, match="`smooth`"):
        fft.good_size(10, smooth=1)
    with pytest.raises(ValueError, match="`smooth` must be at most 13"):
        fft.good_size(10, smooth=17)
    with pytest.raises(ValueError, match="`smooth`"):
        fft.is_smooth(10, 10**9)
    with pytest.raises(TypeError, match="`smooth`"):
        fft.good_size(10, smooth=7.0)
    with pytest.raises(TypeError, match="`even`"):
        fft.good_size(10, even=1)
    with pytest.raises(TypeError, match="`measure`"):
        fft.good_size(10, measure="yes")
    with pytest.raises(ValueError, match="`shape`"):
        fft.advise((), measure=False)
    with pytest.raises(ValueError, match=r"`shape\[1\]`"):
        fft.advise((4, 0), measure=False)
    with pytest.raises(TypeError, match="`shape`"):
        fft.advise("64", measure=False)
    with pytest.raises(TypeError, match=r"`shape\[0\]`"):
        fft.advise((4.0, 4), measure=False)
    with pytest.raises(ValueError, match="`dtype`"):
        fft.advise((8,), real=True, dtype=np.complex64, measure=False)
    with pytest.raises(ValueError, match="`dtype`"):
        fft.advise((8,), dtype=np.float32, measure=False)
    with pytest.raises(TypeError, match="`dtype`"):
        fft.advise((8,), dtype="no such type", measure=False)
    with pytest.raises(ValueError, match="`candidates`"):
        fft.advise((8,), candidates=0, measure=False)
    with pytest.raises(ValueError, match="`max_growth`"):
        fft.advise((8,), max_growth=0.5, measure=False)
    with pytest.raises(ValueError, match="`margin`"):
        fft.advise((8,), margin=float("nan"), measure=False)
    with pytest.raises(TypeError, match="`real`"):
        fft.advise((8,), real=None, measure=False)


def test_unmeasured_advice_is_the_rule(tmp_cache):
    assert fft.advise((137, 23, 1), real=True, measure=False) == (140, 24, 1)
    assert fft.advise(51, measure=False, even=True, smooth=5) == (54,)
    assert not tmp_cache.exists()  # nothing measured, nothing stored


def _fake_timer(times):
    """A stand-in for fft._timer: each shape's 'time' from `times` (default 1.0), calls logged."""
    calls = []

    def make(lib, real, dtype):
        def run(shape):
            calls.append(shape)
            return times.get(shape, 1.0)

        return run

    return make, calls


def test_advise_picks_the_fastest_and_keeps_the_rule_within_the_margin(tmp_cache, monkeypatch):
    # cube 137³: candidates 137, 140 (the rule), 144, 147, 150
    make, calls = _fake_timer({(144,) * 3: 0.5, (140,) * 3: 0.8, (137,) * 3: 3.0})
    monkeypatch.setattr(fft, "_timer", make)
    assert fft.advise((137, 137, 137), real=True, backend="cpu") == (144, 144, 144)
    assert {s[0] for s in calls} == {137, 140, 144, 147, 150}
    # within the margin the rule wins (a choice must not flip with noise)
    make, _ = _fake_timer({(21,) * 2: 0.99, (20,) * 2: 1.0})
    monkeypatch.setattr(fft, "_timer", make)
    assert fft.advise((19, 19), backend="cpu") == (20, 20)  # rule 20 = 2²·5, 21 only 1% faster
    # the requested size itself may win (no padding at all)
    make, _ = _fake_timer({(13,): 0.1})
    monkeypatch.setattr(fft, "_timer", make)
    assert fft.advise(13, backend="cpu") == (13,)
    # non-cubic shapes: each axis in turn
    make, calls = _fake_timer({(36, 20): 0.7, (36, 22): 0.2, (35, 20): 0.9})
    monkeypatch.setattr(fft, "_timer", make)
    assert fft.advise((34, 19), backend="cpu") == (36, 22)
    # even: every candidate even
    make, calls = _fake_timer({})
    monkeypatch.setattr(fft, "_timer", make)
    got = fft.advise((33,), backend="cpu", even=True)
    assert got == (36,) and all(s[0] % 2 == 0 for s in calls)


def test_a_win_the_second_measurement_does_not_confirm_is_dropped(tmp_cache, monkeypatch):
    """The winner must beat the rule again in a second, separate measurement of the two: a size
    that was fast once (a timing blip) gives way to the rule; one fast both times is kept."""
    from spkernels.tuning import cache

    for second, want in (({(20, 20): 1.0, (22, 22): 0.99}, (20, 20)), ({(20, 20): 1.0, (22, 22): 0.5}, (22, 22))):
        asked = []

        def measure(shapes, run, repeats, budget):
            asked.append(sorted(shapes))
            return {s: (0.5 if s == (22, 22) else 1.0) for s in shapes} if len(asked) == 1 else dict(second)

        monkeypatch.setattr(fft, "_measure", measure)
        tmp_cache.unlink(missing_ok=True)
        cache.reload()
        assert fft.advise((19, 19), backend="cpu") == want
        assert len(asked) == 2 and asked[1] == [(20, 20), (22, 22)]
        assert cache.lookup("fft", "cpu", "complex128", "19x19")["shape"] == list(want)


def test_advise_cache_round_trip(tmp_cache, monkeypatch):
    make, calls = _fake_timer({(144,) * 3: 0.5, (140,) * 3: 0.8})
    monkeypatch.setattr(fft, "_timer", make)
    got = fft.advise((137, 137, 137), real=True, backend="cpu")
    assert got == (144, 144, 144)
    data = json.loads(tmp_cache.read_text())
    (key, rec), = data["entries"].items()
    assert key == cache.make_key("fft", "cpu", "float64", "137x137x137")
    assert rec["config"] == {"shape": [144, 144, 144]}
    assert rec["time_s"] == 0.5 and rec["default_time_s"] == 0.8 and rec["rule"] == [140, 140, 140]
    assert rec["speedup"] == pytest.approx(1.6)  # the rule's time over the choice's (`spkernels tune --show`)
    assert len(rec["candidates"]) == 5
    # a later call (and a new process: reload) reads the cache, never measures
    calls.clear()
    assert fft.advise((137, 137, 137), real=True, backend="cpu") == got
    cache.reload()
    assert fft.advise((137, 137, 137), real=True, backend="cpu") == got
    assert calls == []
    # other precisions and shapes are other entries
    assert fft.advise((137, 137, 137), real=True, backend="cpu", dtype=np.float32) == (144, 144, 144)
    assert cache.record("fft", "cpu", "float32", "137x137x137") is not None
    assert fft.advise((137, 137, 137), backend="cpu") == (144, 144, 144)
    assert cache.record("fft", "cpu", "complex128", "137x137x137") is not None


def test_a_cached_shape_that_does_not_fit_is_ignored(tmp_cache, monkeypatch):
    cache.store("fft", "cpu", "complex128", "30x30", {"shape": [28, 32]})  # 28 < 30: not usable
    make, calls = _fake_timer({(32, 30): 0.5, (32, 32): 0.1})
    monkeypatch.setattr(fft, "_timer", make)
    assert fft.advise((30, 30), backend="cpu") == (32, 32)
    assert calls and cache.lookup("fft", "cpu", "complex128", "30x30") == {"shape": [32, 32]}


def test_tuning_off_gives_the_rule_and_never_measures(tmp_cache, monkeypatch):
    cache.store("fft", "cpu", "float64", "137x137x137", {"shape": [144, 144, 144]})
    monkeypatch.setenv("SPK_TUNING", "off")

    def boom(*a, **k):
        raise AssertionError("measured under SPK_TUNING=off")

    monkeypatch.setattr(fft, "_timer", boom)
    assert fft.advise((137, 137, 137), real=True, backend="cpu") == (140, 140, 140)
    assert fft.good_size(137, measure=True, backend="cpu") == 140


def test_good_size_measure_is_a_1d_advice(tmp_cache, monkeypatch):
    make, _ = _fake_timer({(144,): 0.1})
    monkeypatch.setattr(fft, "_timer", make)
    assert fft.good_size(137, measure=True, backend="cpu") == 144
    assert cache.lookup("fft", "cpu", "complex128", "137") == {"shape": [144]}


def test_unwritable_cache_keeps_the_choice_for_the_process(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPK_TUNING_CACHE", str(blocker / "tuning.json"))
    monkeypatch.delenv("SPK_TUNING", raising=False)
    cache.reload()
    make, calls = _fake_timer({(18,): 0.1})
    monkeypatch.setattr(fft, "_timer", make)
    assert fft.advise(17, backend="cpu") == (18,)
    n = len(calls)
    assert fft.advise(17, backend="cpu") == (18,) and len(calls) == n  # memo, not a new measurement
    cache.reload()


def test_a_failing_measurement_gives_the_rule(tmp_cache, monkeypatch):
    def broken(lib, real, dtype):
        def run(shape):
            raise RuntimeError("no FFT today")

        return run

    monkeypatch.setattr(fft, "_timer", broken)
    assert fft.advise((23, 23), backend="cpu") == (24, 24)
    assert not tmp_cache.exists()


def test_gpu_advice_without_a_gpu_is_the_rule(tmp_cache, monkeypatch):
    monkeypatch.setattr(fft, "_gpu_usable", lambda: False)
    assert fft.advise((137,) * 3, real=True, backend="cuda") == (140,) * 3
    assert not tmp_cache.exists()


def test_real_measurement_on_this_machine(tmp_cache):
    """One real measurement (small, cheap): a valid shape, stored with its timings."""
    got = fft.advise((45, 38), real=True, backend="cpu", repeats=2, budget=0.5)
    assert len(got) == 2 and got[0] >= 45 and got[1] >= 38
    rec = cache.record("fft", "cpu", "float64", "45x38")
    assert rec["config"]["shape"] == list(got) and rec["time_s"] > 0
    assert all(t > 0 for t in rec["candidates"].values())


def test_good_size_refuses_lengths_no_fft_has():
    with pytest.raises(ValueError, match="at most 2\\*\\*63"):
        fft.good_size(10 ** 5000)  # at once: the smooth-number search is never started
    assert fft.good_size(2 ** 63) == 2 ** 63
