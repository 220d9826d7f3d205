"""spkernels.tuning: spaces and constraints, the searchers' validation, the cache's round trip and
corruption handling, SPK_TUNING=off, the kernels' use of stored configurations, online tuning in
reconstruct_fourier and the `spkernels tune` command."""

from __future__ import annotations

import itertools
import json
import logging
import math
import subprocess
import sys

import numpy as np
import pytest

from spkernels import backends
from spkernels.tuning import active, cache, families, online, search, sizes
from spkernels.tuning.space import Constraint, Param, Space

import _subprocess


def _cpu_or_skip(name="cpu"):
    why = backends._why_unavailable(name)
    if why is not None:
        pytest.skip(f"backend {name!r} unavailable: {why}")
    return name


def _demo_space():
    return Space("demo", [Param("block", (16, 32, 64, 128, 256, 2048), 64), Param("tile", (1, 2, 3, 4, 8), 2),
                          Param("flag", (False, True), False)],
                 [Constraint("threads <= device limit", lambda c, x: c["block"] <= x["max_threads"]),
                  Constraint("tile divides block", lambda c, x: c["block"] % c["tile"] == 0),
                  Constraint("flag needs a big block", lambda c, x: not c["flag"] or c["block"] >= 128)])


# ----------------------------------------------------------------------------- spaces


def test_space_enumerates_exactly_the_valid_configs():
    s = _demo_space()
    ctx = {"max_threads": 256}
    got = s.configs(ctx)
    brute = [dict(zip(s.names, v)) for v in itertools.product(*(p.values for p in s.params))]
    valid = [c for c in brute if c["block"] <= 256 and c["block"] % c["tile"] == 0 and (not c["flag"] or c["block"] >= 128)]
    assert got[0] == s.default() == {"block": 64, "tile": 2, "flag": False}
    assert sorted(map(repr, got)) == sorted(map(repr, valid))
    assert len(got) < s.cardinality()
    assert all(s.is_valid(c, ctx) for c in got)
    assert s.violations({"block": 2048, "tile": 3, "flag": True}, ctx) == [
        "threads <= device limit", "tile divides block"]
    assert s.violations({"block": 64}, ctx)  # missing keys
    assert not s.is_valid({"block": 63, "tile": 1, "flag": False}, ctx)  # a value not declared
    with pytest.raises(ValueError, match="default"):
        s.configs({"max_threads": 32})  # the default itself breaks a constraint
    with pytest.raises(ValueError, match="default"):
        Param("x", (1, 2), 3)
    with pytest.raises(ValueError, match="repeat"):
        Space("bad", [Param("x", (1,), 1), Param("x", (2,), 2)])
    with pytest.raises(TypeError, match="params"):
        Space("bad", ["x"])


def test_search_never_runs_an_invalid_config():
    s = _demo_space()
    ctx = {"max_threads": 256}
    seen = []

    def runner(cfg):
        assert s.is_valid(cfg, ctx), cfg
        seen.append(repr(sorted(cfg.items())))
        return np.arange(4.0)

    res = search.tune(s, runner, ctx=ctx, strategy="exhaustive", repeat=1)
    n_valid = len(s.configs(ctx))
    assert res.n_valid == n_valid and len(res.trials) == n_valid and res.stopped == "exhausted"
    assert len(set(seen)) == n_valid  # every valid config ran, none other
    assert s.is_valid(res.best, ctx)
    # random search: a count budget, and the same seed gives the same order
    seen.clear()
    r1 = search.tune(s, runner, ctx=ctx, strategy="random", max_configs=4, seed=3, repeat=1)
    r2 = search.tune(s, runner, ctx=ctx, strategy="random", max_configs=4, seed=3, repeat=1)
    assert r1.stopped == "count" and len(r1.trials) == 5
    assert [t.config for t in r1.trials] == [t.config for t in r2.trials]
    assert [t.config for t in search.tune(s, runner, ctx=ctx, strategy="random", max_configs=4, seed=4,
                                          repeat=1).trials] != [t.config for t in r1.trials]
    # a time budget of zero tries no candidate beyond the default
    r0 = search.tune(s, runner, ctx=ctx, budget_s=0.0, repeat=1)
    assert r0.stopped == "budget" and len(r0.trials) == 1 and r0.best == s.default()
    with pytest.raises(ValueError, match="strategy"):
        search.tune(s, runner, ctx=ctx, strategy="greedy")


def test_wrong_candidate_is_rejected():
    """The fastest configuration gives a wrong answer: it is rejected and never chosen."""
    import time

    s = Space("wrong", [Param("variant", ("ref", "slow", "wrong-but-fast", "raises"), "ref")])
    rng = np.random.default_rng(5)
    x = rng.standard_normal(64)

    def runner(cfg):
        v = cfg["variant"]
        if v == "raises":
            raise RuntimeError("launch failed")
        if v == "wrong-but-fast":
            return x * (1 + 1e-12)  # off by one rounding step: a bitwise check must catch it
        time.sleep(0.002)
        return x.copy()

    res = search.tune(s, runner, repeat=1)
    status = {t.config["variant"]: t.status for t in res.trials}
    assert status == {"ref": "ok", "slow": "ok", "wrong-but-fast": "rejected", "raises": "error"}
    assert res.best["variant"] in ("ref", "slow")
    assert [t.config["variant"] for t in res.rejected] == ["wrong-but-fast"]
    # with the family's tolerance check the same tiny difference is accepted, a large one is not
    ok, _ = families.within(1e-6)(x * (1 + 1e-12), x)
    bad, detail = families.within(1e-6)(x * 1.01, x)
    assert ok and not bad and "relative" in detail


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_family_spaces(name):
    for fam in families.FAMILIES:
        sp = families.space(fam, name)
        if name == "numpy" or fam == "fsc" or (fam == "cg" and name not in backends.GPU_BACKENDS):
            assert sp.empty and sp.note.startswith("no knob") and sp.configs() == [{}]
        else:
            assert not sp.empty, (fam, name)
    if name == "numpy":
        return
    # insertion on a GPU: a device with small limits filters the configurations
    ins = families.space("insertion", name)
    if name in backends.GPU_BACKENDS:
        ctx = dict(gpu=True, max_threads=256, max_shared_bytes=48 * 1024, warp=32, n=64, N=16, itemsize=4,
                   table_size=11500)
        cfgs = ins.configs(ctx)
        assert 1 < len(cfgs) < ins.cardinality()
        for c in cfgs:
            t = math.prod(c["block"])
            assert t <= 256 and t % 32 == 0 and c["block"][0] <= 9 and max(c["block"]) <= 16
            smem = 4 * (9 * c["batch"] + (11500 if c.get("table_in_shared") else 0)) if name == "cuda" else 72 * c["batch"]
            assert smem <= 48 * 1024
        if name == "cuda":  # the shared-memory constraint removed the largest batch with the table in shared memory
            assert not any(c["batch"] == 128 and c["table_in_shared"] for c in cfgs)
            assert any(c["batch"] == 128 and not c["table_in_shared"] for c in cfgs)
    else:
        cfgs = ins.configs(dict(n=40))
        assert {c["images_per_launch"] for c in cfgs} == {4096, 8, 16, 32}
    # nufft: bins narrower than the kernel are not tried
    nu = families.space("nufft", name, 1)  # every backend's module loads without its hardware
    ctx = dict(families.device_context(name), w=7, itemsize=8, type=1)
    if name in backends.GPU_BACKENDS:
        ctx.update(max_shared_bytes=48 * 1024)
    d = nu.default()["bin_target"]
    assert all(c["bin_target"] >= 7 or c["bin_target"] == d for c in nu.configs(ctx))
    assert "method" not in nu.names  # deterministic knobs only, by default
    nd = families.space("nufft", name, 1, deterministic=False)
    assert {c["method"] for c in nd.configs(ctx)} == {"gather", "scatter"}
    assert "method" not in families.space("nufft", name, 2, deterministic=False).names


def test_distance_algorithm_knob_is_cuda_fp32_with_cupy_only():
    assert "algorithm" not in families.space("distance", "cpu").names
    sp = families.space("distance", "cuda")
    ctx = dict(R=4096, N=1024, P=2048)
    algos = lambda **kw: {c["algorithm"] for c in sp.configs(dict(ctx, **kw))}  # noqa: E731
    assert algos(cupy=True, precision="fp32") == {"fused", "gemm"}
    assert algos(cupy=False, precision="fp32") == {"fused"}
    assert algos(cupy=True, precision="tf32") == {"fused"}
    # the check: within the error bound passes, a wrong model fails, a near-tie may rank either way
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 16)).astype(np.float32)
    Y = rng.standard_normal((6, 16)).astype(np.float32)
    from spkernels.kernels import distance_argmin

    ref = distance_argmin(X, Y, k=3, precision="fp64", backend="numpy")
    check = families._topk_within(X, Y, "fp32")
    ri, rs = ref.index, ref.score.astype(np.float32)
    assert check((ri, rs * np.float32(1 + 1e-7)), (ri, rs))[0]
    wrong = ri.copy()
    wrong[:, 0] = (wrong[:, 0] + 1) % 40
    assert not check((wrong, rs), (ri, rs))[0]
    assert not check((ri, rs + 1.0), (ri, rs))[0]


def test_size_classes():
    assert sizes.distance(2000, 512, 1000) == "r2048-n512-p1024"
    assert sizes.insertion(64, 200) == "N64-n256"
    assert sizes.nufft(2, 7, (64, 60, 64), 100_000) == "t2-w7-n64-m131072"
    assert active.pow2(1) == 1 and active.pow2(1025) == 2048


# ----------------------------------------------------------------------------- cache


def test_cache_round_trip_and_corruption(tmp_cache, caplog):
    assert cache.lookup("distance", "cpu", "fp32", "r8-n8-p8") is None
    key = cache.store("distance", "cpu", "fp32", "r8-n8-p8", {"model_rows": 64, "data_rows": "auto"}, speedup=1.5)
    assert key.split("|")[2:] == ["distance", "cpu", "fp32", "r8-n8-p8"]
    cache.reload()  # as a new process: read from the file
    assert cache.lookup("distance", "cpu", "fp32", "r8-n8-p8") == {"model_rows": 64, "data_rows": "auto"}
    assert cache.record("distance", "cpu", "fp32", "r8-n8-p8")["speedup"] == 1.5
    data = json.loads(tmp_cache.read_text())
    assert data["format"] == cache.FORMAT and key in data["entries"]
    assert not list(tmp_cache.parent.glob(".tuning-*"))  # the atomic write left no temporary file

    caplog.set_level(logging.WARNING, logger="spkernels.tuning")
    for text, what in (("{not json", "unreadable"), (json.dumps({"format": 999, "entries": {}}), "format"),
                       (json.dumps([1, 2]), "format")):
        tmp_cache.write_text(text)
        cache.reload()
        caplog.clear()
        assert cache.lookup("distance", "cpu", "fp32", "r8-n8-p8") is None
        assert what in caplog.text
    # a malformed entry is dropped, the good one next to it kept
    good = cache.make_key("nufft", "cpu", "complex64", "t1")
    tmp_cache.write_text(json.dumps({"format": cache.FORMAT, "entries": {
        key: {"config": [1, 2]}, good: {"config": {"bin_target": 8}}}}))
    cache.reload()
    caplog.clear()
    assert cache.lookup("distance", "cpu", "fp32", "r8-n8-p8") is None
    assert cache.lookup("nufft", "cpu", "complex64", "t1") == {"bin_target": 8}
    assert "malformed" in caplog.text
    # a store over a corrupt file replaces it with a valid one
    tmp_cache.write_text("garbage")
    cache.store("cg", "cuda", "float64", "n8", {"check_every": 4})
    cache.reload()
    assert cache.lookup("cg", "cuda", "float64", "n8") == {"check_every": 4}
    assert cache.clear("cg") == 1 and cache.lookup("cg", "cuda", "float64", "n8") is None
    # an unreadable path (a directory) is ignored too
    d = tmp_cache.parent / "dir.json"
    d.mkdir()
    import os

    os.environ["SPK_TUNING_CACHE"] = str(d)
    cache.reload()
    assert cache.lookup("cg", "cuda", "float64", "n8") is None


def test_tuning_off(tmp_cache, monkeypatch):
    cache.store("cg", "cuda", "float64", "n8", {"check_every": 4})
    import importlib

    _cg = importlib.import_module("spkernels.kernels.cg")
    assert _cg._tuned_check_every("cuda", np.float64, 8) == 4
    monkeypatch.setenv("SPK_TUNING", "off")
    assert cache.lookup("cg", "cuda", "float64", "n8") is None
    assert _cg._tuned_check_every("cuda", np.float64, 8) == 8
    with active.using("cg", {"check_every": 2}):  # a tuner's explicit run still applies
        assert _cg._tuned_check_every("cuda", np.float64, 8) == 2


# ----------------------------------------------------------------------------- kernels use it


def test_distance_uses_stored_batches(tmp_cache, monkeypatch):
    name = _cpu_or_skip("cpu")
    from spkernels.kernels import distance as _d

    rng = np.random.default_rng(11)
    R, N, P = 300, 70, 48
    X = rng.standard_normal((R, P)).astype(np.float32)
    Y = rng.standard_normal((N, P)).astype(np.float32)
    ref = _d.distance_argmin(X, Y, k=3, backend=name)
    calls = []
    real = _d._topk

    def spy(nm, prec, Xb, Yb, *a):
        calls.append((Xb.shape[0], Yb.shape[0]))
        return real(nm, prec, Xb, Yb, *a)

    monkeypatch.setattr(_d, "_topk", spy)
    cache.store("distance", name, "fp32", sizes.distance(R, N, P), {"model_rows": 128, "data_rows": 32})
    got = _d.distance_argmin(X, Y, k=3, backend=name)
    assert sorted(set(calls)) == sorted({(128, 32), (44, 32), (128, 6), (44, 6)})
    np.testing.assert_array_equal(got.index, ref.index)
    np.testing.assert_array_equal(got.score, ref.score)  # any split is bitwise the default's
    calls.clear()
    monkeypatch.setenv("SPK_TUNING", "off")
    _d.distance_argmin(X, Y, k=3, backend=name)
    assert calls == [(R, N)]
    # a malformed stored value falls back to the default, never fails
    monkeypatch.delenv("SPK_TUNING")
    cache.store("distance", name, "fp32", sizes.distance(R, N, P), {"model_rows": "many", "data_rows": -3})
    calls.clear()
    _d.distance_argmin(X, Y, k=3, backend=name)
    assert calls == [(R, N)]


def test_insertion_uses_stored_params(tmp_cache, monkeypatch):
    name = _cpu_or_skip("cpu")
    from spkernels.geometry.orientations import random_orientations
    from spkernels.geometry.quaternion import quaternion_to_matrix
    from spkernels.kernels import insertion as _ins

    rng = np.random.default_rng(12)
    n, N = 21, 16
    img = (rng.standard_normal((n, N, N)) + 1j * rng.standard_normal((n, N, N))).astype(np.complex64)
    rot = quaternion_to_matrix(random_orientations(n, rng))
    ref = _ins.insert(img, rot, backend=name)
    impl = backends.load(name, "insertion")
    seen = []
    real = impl.insert

    def spy(images, *a):
        seen.append(images.shape[0])
        return real(images, *a)

    monkeypatch.setattr(impl, "insert", spy)
    cache.store("insertion", name, "complex64", sizes.insertion(N, n), {"images_per_launch": 8})
    got = _ins.insert(img, rot, backend=name)
    assert seen == [8, 8, 5]
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    seen.clear()
    _ins.insert(img, rot, backend=name, params=_ins.LaunchParams())  # explicit params win
    assert seen == [n]


def test_nufft_uses_stored_bins(tmp_cache, monkeypatch):
    name = _cpu_or_skip("cpu")
    from spkernels.kernels import nufft as _n

    rng = np.random.default_rng(13)
    M, n = 2000, 32
    pts = [rng.uniform(-np.pi, np.pi, M) for _ in range(3)]
    c = rng.standard_normal(M) + 1j * rng.standard_normal(M)
    ref = _n.Plan(1, (n, n, n), eps=1e-5, backend=name).setpts(*pts)
    base = ref.bin_size
    want = 8 if base[0] != 8 else 12
    cache.store("nufft", name, "complex128", sizes.nufft(1, ref.w, ref.n_fine, M),
                {"bin_target": want, "method": "scatter"})
    plan = _n.Plan(1, (n, n, n), eps=1e-5, backend=name).setpts(*pts)
    assert plan.bin_size != base and plan.method == "scatter"
    assert _n.Plan(1, (n, n, n), eps=1e-5, backend=name, method="gather").setpts(*pts).method == "gather"
    f_ref = ref.execute(c)
    f = plan.execute(c)
    assert np.linalg.norm(f - f_ref) <= 1e-5 * np.linalg.norm(f_ref)


# ----------------------------------------------------------------------------- online


def test_online_tuner_keeps_the_default_result():
    s = Space("fake", [Param("v", ("ref", "a", "wrong", "b"), "ref")])
    x = np.arange(10.0)

    def fn(acc):
        cfg = active.current("fake", "cpu", "float64", "n")
        return acc + (x * 2 if cfg["v"] == "wrong" else x)

    t = online.OnlineTuner("fake", "cpu", "float64", "n", s, {}, families.bitwise, store=False, seed=1)
    acc = np.zeros(10)
    for _ in range(8):
        acc = t.call(fn, acc)
    np.testing.assert_array_equal(acc, 8 * x)  # every call's result is the default's
    assert t.done and t.best["v"] != "wrong"
    assert {c["v"]: ok for c, ok, *_ in t.trials} == {"a": True, "wrong": False, "b": True}
    with pytest.raises(ValueError, match="tuning"):
        online.check_mode("offline")


def test_reconstruct_fourier_online_matches_default(tmp_cache):
    name = _cpu_or_skip("cpu")
    from spkernels import cryoem

    rng = np.random.default_rng(14)
    vol = rng.standard_normal((16, 16, 16)).astype(np.float32)
    parts = cryoem.simulate(vol, 200, voxel_size=5.0, seed=3, backend=name)
    ref = cryoem.reconstruct_fourier(parts, batch=48, backend=name)
    got = cryoem.reconstruct_fourier(parts, batch=48, backend=name, tuning="online")
    np.testing.assert_array_equal(got.volume, ref.volume)
    rec = cache.record("insertion", name, "complex64", sizes.insertion(32, 48))
    assert rec is not None and rec["strategy"] == "online" and rec["tried"] == 1 + 3  # 8, 16, 32 below 48
    with pytest.raises(ValueError, match="params"):
        cryoem.reconstruct_fourier(parts, batch=48, backend=name, tuning="online",
                                   params=__import__("spkernels").kernels.insertion.LaunchParams())


@pytest.mark.parametrize("backend", backends.GPU_BACKENDS)
def test_gpu_insertion_search_and_online(backend, monkeypatch):
    """The GPU spaces' candidates run and agree with the default (also under the CUDA simulator)."""
    from conftest import _check_backend

    _check_backend(backend)  # skips, naming why, where the GPU backend cannot run
    from spkernels.geometry.orientations import random_orientations
    from spkernels.geometry.quaternion import quaternion_to_matrix
    from spkernels.kernels import insertion as _ins

    n, N = 4, 8
    monkeypatch.setitem(families._DIMS["insertion"], "tiny", dict(n=n, N=N))
    pr = families.problems("insertion", backend, "tiny")[0]
    res = search.tune(pr.space, pr.runner, ctx=pr.ctx, compare=pr.compare, max_configs=1, repeat=1,
                      strategy="random", seed=2)
    assert len(res.trials) == 2 and all(t.status == "ok" for t in res.trials), [t.detail for t in res.trials]
    tuner = online.insertion_tuner(backend, np.complex64, N, n, max_trials=1, store=False, seed=2)
    rng = np.random.default_rng(15)
    acc, ref = (None, None), (None, None)
    for _ in range(3):
        img = (rng.standard_normal((n, N, N)) + 1j * rng.standard_normal((n, N, N))).astype(np.complex64)
        rot = quaternion_to_matrix(random_orientations(n, rng))
        acc = tuner.call(lambda a: _ins.insert(img, rot, volume=a[0], weights=a[1], backend=backend), acc)
        ref = _ins.insert(img, rot, volume=ref[0], weights=ref[1], backend=backend, params=_ins.LaunchParams())
    assert tuner.done and len(tuner.trials) == 1
    for a, b in zip(acc, ref):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ----------------------------------------------------------------------------- CLI


def test_cli_tune_show_info_clear(tmp_path):
    _cpu_or_skip("cpu")
    env = _subprocess.env(SPK_TUNING_CACHE=str(tmp_path / "t.json"), OMP_WAIT_POLICY="passive")
    env.pop("SPK_TUNING", None)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "spkernels", *args], env=env, capture_output=True, text=True,
                              timeout=300)

    r = cli("tune", "insertion", "cg", "fsc", "--backend", "cpu", "--budget", "1", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["family", "backend", "size", "class"]
    ins = next(ln for ln in lines if ln.startswith("insertion"))
    assert "images_per_launch=" in ins and ins.rstrip().endswith(tuple("0123456789")) or "rejected" in ins
    assert any(ln.startswith("cg") and "no knob" in ln for ln in lines)
    assert any(ln.startswith("fsc") and "no knob" in ln for ln in lines)
    r = cli("tune", "--show")
    assert r.returncode == 0 and "1 tuned configuration" in r.stdout and "|insertion|cpu|" in r.stdout
    r = cli("info")
    assert r.returncode == 0 and "1 tuned configuration(s)" in r.stdout
    r = cli("tune", "--clear")
    assert r.returncode == 0 and "removed 1" in r.stdout
    r = cli("info")
    assert "no tuned configurations" in r.stdout
    r = cli("tune", "nosuchfamily")
    assert r.returncode == 2 and "unknown family" in r.stderr
    if backends._why_unavailable("cuda") is not None:  # an explicit backend that cannot run: one line, exit 2
        r = cli("tune", "cg", "--backend", "cuda")
        assert r.returncode == 2 and "cuda" in r.stderr and "Traceback" not in r.stderr
