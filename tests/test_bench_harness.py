"""The benchmark harness cannot rot silently: the whole asv suite runs once (quick) on every
test run, and ``spkernels bench compare`` runs on the built-in ``copy`` case.

A benchmark that raises (anything but asv's NotImplementedError skip) makes ``asv run`` exit
non-zero, and this test fails with asv's output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spkernels
from spkernels import backends
from spkernels.bench import ceilings, registry
from spkernels.bench.machine import machine_name, slug_for_gpu

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "asv_benches"


def _asv_env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update(
        HOME=str(tmp_path / "home"),  # asv machine writes ~/.asv-machine.json
        # asv drops PYTHONPATH in benchmark processes; point it at the spkernels under test.
        ASV_PYTHONPATH=str(Path(spkernels.__file__).resolve().parents[1]),
        SPK_CEILINGS_FILE=str(tmp_path / "ceilings.json"),
        SPK_CEILINGS_QUICK="1",
        SPK_MACHINE="harness-test",
        SPK_BENCH_SMALL="1",  # every family shrinks its CPU sizes: this run proves the suite runs
    )
    (tmp_path / "home").mkdir(exist_ok=True)
    return env


def _write_config(tmp_path: Path) -> Path:
    """The committed existing-environment config, redirected to temporary result folders."""
    conf = json.loads("\n".join(line for line in (BENCH_DIR / "asv.conf.json").read_text().splitlines()
                                if not line.lstrip().startswith("//")))
    conf.update(repo=str(ROOT), benchmark_dir=str(BENCH_DIR), results_dir=str(tmp_path / "results"),
                html_dir=str(tmp_path / "html"), env_dir=str(tmp_path / "env"))
    path = tmp_path / "asv.conf.json"
    path.write_text(json.dumps(conf))
    return path


def test_asv_suite_quick_run_has_no_failures(tmp_path):
    pytest.importorskip("asv", reason="asv is part of the `test` extra")
    env = _asv_env(tmp_path)
    conf = _write_config(tmp_path)
    py = sys.executable
    subprocess.run([py, "-m", "asv", "machine", "--config", str(conf), "--yes", "--machine", "harness-test",
                    "--os", "test", "--arch", "x86_64", "--cpu", "test", "--num_cpu", "1", "--ram", "1GB"],
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    git_ok = (ROOT / ".git").exists() and shutil.which("git")
    # forkserver imports the suite once (fast); a CUDA context does not survive fork, so spawn
    # a fresh interpreter per benchmark where a GPU backend could create one.
    gpu = any(backends.is_available(b) for b in ("cuda", "numba-cuda")) and not backends.cuda_simulator()
    cmd = [py, "-m", "asv", "run", "--config", str(conf), "--python=same", "--quick", "--show-stderr",
           "--machine", "harness-test", "--launch-method", "spawn" if gpu else "forkserver"]
    if git_ok:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        cmd += ["--set-commit-hash", head]
    else:
        cmd += ["--dry-run"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"asv run failed (exit {proc.returncode}):\n{out[-8000:]}"
    assert "bench_ceilings.GemmCeiling.track_gemm_rate" in out, out[-4000:]
    assert " failed" not in out, out[-8000:]

    # The CPU ceilings were measured in this run and shared through the file.
    shared = json.loads((tmp_path / "ceilings.json").read_text())
    assert shared["machine"] == "harness-test"
    assert shared["cpu"]["gemm_float64"] > 1e8 and shared["cpu"]["copy"] > 1e8

    if git_ok:
        # Results were written and the summary script turns them into a table.
        results = tmp_path / "results"
        assert (results / "harness-test" / "machine.json").exists()
        summary = subprocess.run([py, str(ROOT / "ci" / "summarize_asv.py"), str(results),
                                  "--machine", "harness-test"], capture_output=True, text=True, env=env)
        assert summary.returncode == 0, summary.stderr
        assert "GemmCeiling.track_gemm_rate" in summary.stdout
        assert "GFLOP/s" in summary.stdout


def test_bench_compare_cli_on_copy_case(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("SPK_CEILINGS_FILE", str(tmp_path / "ceilings.json"))
    monkeypatch.setenv("SPK_CEILINGS_QUICK", "1")
    monkeypatch.setattr(ceilings, "_MEMORY", {})
    from spkernels.cli import main

    out = tmp_path / "cmp"
    rc = main(["bench", "compare", "--kernel", "copy", "--size", "small", "--precision", "float32",
               "--out", str(out), "--repeat", "2", "--min-time", "0.01", "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "| copy | small | float32 |" in text
    data = json.loads((out / "compare.json").read_text())
    rows = {r["backend"]: r for r in data["rows"]}
    assert set(rows) == {"cuda", "numba-cuda", "cpu", "numba-cpu"}
    usable = [b for b in rows if backends.is_available(b) and not
              (b == "numba-cuda" and backends.cuda_simulator())]
    assert usable, "no backend usable for the copy case"
    for b, r in rows.items():
        if b in usable:
            assert r["status"] == "ok", r
            assert r["seconds"] > 0 and np.isfinite(r["seconds"])
            assert r["throughput_unit"] == "GB/s" and r["throughput"] > 0
            assert r["ceiling_kind"] == "copy"
            # A copy's fraction of the copy ceiling is of order one, never zero or absurd.
            assert 0.01 < r["fraction"] < 20, r
        else:
            assert r["status"] != "ok"
    for cpp, numba in registry.PEERS:
        if rows[cpp]["status"] == "ok" and rows[numba]["status"] == "ok":
            expect = rows[numba]["seconds"] / rows[cpp]["seconds"]
            assert rows[cpp]["numba_over_cpp"] == pytest.approx(expect)
            assert rows[numba]["numba_over_cpp"] == pytest.approx(expect)
    png = (out / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "| copy | small | float32 |" in (out / "compare.md").read_text()


def test_compare_rejects_unknown_kernel_and_size():
    from spkernels.bench.compare import run_compare

    with pytest.raises(ValueError, match="`kernel`"):
        run_compare(["no-such-kernel"])
    with pytest.raises(ValueError, match="`size`"):
        run_compare(["copy"], sizes=["enormous"])


def test_registry_rejects_bad_registrations():
    prep = lambda backend, size, precision: None  # noqa: E731
    with pytest.raises(ValueError, match="`ceiling`"):
        registry.register("bad-ceiling", prep, ceiling="flops")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("copy", prep)
    case = registry.get("copy")
    assert case.ceiling_kind("float64") == "copy"
    gemm = registry.BenchCase("g", prep, ("small",), ("complex64",), "gemm", ("cpu",))
    assert gemm.ceiling_kind("complex64") == "gemm_float32"


@pytest.mark.parametrize("name, slug", [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"),
    ("NVIDIA H100 PCIe", "h100-pcie"),
    ("NVIDIA H100 NVL", "h100-nvl"),
    ("NVIDIA H200", "h200"),
    ("NVIDIA GH200 480GB", "gh200"),
    ("NVIDIA A100-SXM4-80GB", "a100"),
    ("NVIDIA A100 80GB PCIe", "a100-pcie"),
    ("NVIDIA GeForce RTX 4090", "rtx-4090"),
    ("Tesla V100-SXM2-32GB", "v100"),
])
def test_gpu_slugs(name, slug):
    assert slug_for_gpu(name) == slug


def test_machine_name_override_and_cpu_default(monkeypatch):
    monkeypatch.setenv("SPK_MACHINE", "my-box")
    assert machine_name() == "my-box"
    monkeypatch.delenv("SPK_MACHINE")
    monkeypatch.setattr("spkernels.bench.machine.gpu_names", lambda: [])
    assert machine_name() == f"cpu-{len(os.sched_getaffinity(0))}core"


def test_ceilings_are_shared_through_the_file_and_expire(tmp_path, monkeypatch):
    monkeypatch.setenv("SPK_CEILINGS_FILE", str(tmp_path / "c.json"))
    monkeypatch.setenv("SPK_MACHINE", "cache-test")
    calls = []

    def fake_measure(device, *, quick=None, kinds=ceilings.KINDS):
        calls.append(tuple(kinds))
        import time
        return {**{k: 1e9 * (1 + len(calls)) for k in kinds}, "details": {}, "measured_at": time.time()}

    monkeypatch.setattr(ceilings, "measure", fake_measure)
    monkeypatch.setattr(ceilings, "_MEMORY", {})
    first = ceilings.get("cpu", kinds=("copy",))
    assert calls == [("copy",)]
    monkeypatch.setattr(ceilings, "_MEMORY", {})  # a new process: only the file remains
    again = ceilings.get("cpu", kinds=("copy",))
    assert again["copy"] == first["copy"] and len(calls) == 1
    both = ceilings.get("cpu", kinds=("copy", "gemm_float64"))  # only the missing kind is measured
    assert calls[-1] == ("gemm_float64",) and both["copy"] == first["copy"]
    assert ceilings.fraction(first["copy"] / 2, "copy", "cpu") == pytest.approx(0.5)
    monkeypatch.setenv("SPK_CEILINGS_MAX_AGE", "0")  # stale: measured again
    monkeypatch.setattr(ceilings, "_MEMORY", {})
    ceilings.get("cpu", kinds=("copy",))
    assert len(calls) == 3
    monkeypatch.setenv("SPK_MACHINE", "another-machine")  # another machine's file is ignored
    monkeypatch.setenv("SPK_CEILINGS_MAX_AGE", "3600")
    monkeypatch.setattr(ceilings, "_MEMORY", {})
    ceilings.get("cpu", kinds=("copy",))
    assert len(calls) == 4
    with pytest.raises(ValueError, match="`kind`"):
        ceilings.fraction(1.0, "tflops", "cpu")


def test_sanitizer_driver_lists_cases_without_a_gpu():
    proc = subprocess.run([sys.executable, str(ROOT / "ci" / "sanitize_kernels.py"), "--list"],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(Path(spkernels.__file__).resolve().parents[1])))
    assert proc.returncode == 0, proc.stderr
    assert "registered CUDA sanitizer cases" in proc.stdout


def test_gemm_case_reports_flops_against_the_gemm_ceiling(tmp_path, monkeypatch):
    monkeypatch.setenv("SPK_CEILINGS_FILE", str(tmp_path / "ceilings.json"))
    monkeypatch.setenv("SPK_CEILINGS_QUICK", "1")
    monkeypatch.setattr(ceilings, "_MEMORY", {})
    from spkernels.bench.compare import run_compare

    rows = run_compare(["gemm"], precisions=["float64"], backends=["cpu", "numba-cpu"], repeat=1,
                       min_time=0.001)
    timed = [r for r in rows if r.status == "ok"]
    assert timed, [r.status for r in rows]
    for r in timed:
        assert r.throughput_unit == "GFLOP/s" and r.throughput > 0
        assert r.ceiling_kind == "gemm_float64" and 0.001 < r.fraction < 20
        assert r.item_unit == "outputs"


@pytest.mark.parametrize("backend", ["numba-cuda"])
def test_builtin_numba_cuda_kernels_match_reference(backend, rng):
    """The Numba CUDA twins of the built-in cases (tiled GEMM, grid-stride copy) are right:
    on a GPU for real, here under the CUDA simulator (re-run by test_numba_cuda_simulator.py)."""
    if not backends.is_available(backend):
        if backend in os.environ.get("SPK_REQUIRE_BACKENDS", ""):
            pytest.fail(f"backend {backend!r} is required but unavailable")
        pytest.skip(f"{backend} unavailable here")
    from numba import cuda

    from spkernels.bench.cases import copy as copy_case
    from spkernels.bench.cases import gemm as gemm_case

    n, m, k = 37, 21, 45  # not multiples of the tile: edges are exercised
    t = gemm_case._TILE
    for precision, tol in (("float32", 1e-5), ("float64", 1e-12)):
        a = rng.standard_normal((n, k)).astype(precision)
        b = rng.standard_normal((k, m)).astype(precision)
        dc = cuda.to_device(np.full((n, m), np.nan, dtype=precision))
        gemm_case._numba_cuda_gemm(precision)[((m + t - 1) // t, (n + t - 1) // t), (t, t)](
            cuda.to_device(a), cuda.to_device(b), dc)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        got = dc.copy_to_host()
        assert np.isfinite(got).all()
        assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < tol
    src = rng.standard_normal(1000).astype(np.float32)
    dst = cuda.to_device(np.full_like(src, np.nan))
    copy_case._numba_cuda_copy()[3, 64](dst, cuda.to_device(src))  # fewer threads than elements
    assert np.array_equal(dst.copy_to_host(), src)


def _fake_asv_result(path: Path, sha: str, results: dict) -> None:
    cols = ["result", "params", "version", "started_at", "duration"]
    path.write_text(json.dumps({
        "commit_hash": sha, "env_name": "existing-py", "date": 1, "params": {}, "python": "3",
        "requirements": {}, "env_vars": {}, "result_columns": cols, "durations": {}, "version": 2,
        "results": {name: [values, params, "v", 0, 0.1] for name, (values, params) in results.items()},
    }))


@pytest.mark.parametrize("slow_factor, expect_rc", [(1.5, 1), (1.1, 0)])
def test_regression_gate(tmp_path, slow_factor, expect_rc):
    """ci/compare_asv.py fails on a time_* slowdown beyond the factor, and only then."""
    mdir = tmp_path / "results" / "m"
    mdir.mkdir(parents=True)
    (mdir / "machine.json").write_text('{"machine": "m", "version": 1}')
    params = [["'cpu'", "'numba-cpu'"]]
    base = {"b.K.time_k": ([1e-3, 2e-3], params), "b.K.track_rate": ([5.0, 1.0], params)}
    head = {"b.K.time_k": ([1e-3 * slow_factor, 2e-3], params), "b.K.track_rate": ([50.0, 0.1], params)}
    _fake_asv_result(mdir / "aaaa-env.json", "a" * 40, base)
    _fake_asv_result(mdir / "bbbb-env.json", "b" * 40, head)
    proc = subprocess.run([sys.executable, str(ROOT / "ci" / "compare_asv.py"), str(tmp_path / "results"),
                           "a" * 40, "b" * 40, "--machine", "m", "--factor", "1.2"],
                          capture_output=True, text=True)
    assert proc.returncode == expect_rc, proc.stdout + proc.stderr
    assert "time_k(cpu)" in proc.stdout and "track_rate" not in proc.stdout


def test_regression_gate_flags_a_new_failure(tmp_path):
    mdir = tmp_path / "results" / "m"
    mdir.mkdir(parents=True)
    (mdir / "machine.json").write_text('{"machine": "m", "version": 1}')
    _fake_asv_result(mdir / "a-env.json", "a" * 40, {"b.K.time_k": ([1e-3], [])})
    _fake_asv_result(mdir / "b-env.json", "b" * 40, {"b.K.time_k": (None, [])})
    proc = subprocess.run([sys.executable, str(ROOT / "ci" / "compare_asv.py"), str(tmp_path / "results"),
                           "a" * 40, "b" * 40, "--machine", "m"], capture_output=True, text=True)
    assert proc.returncode == 1 and "FAILS" in proc.stdout, proc.stdout + proc.stderr
