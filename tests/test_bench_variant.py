"""`edgefit bench --variant`: untrained zoo variants exported the real way and timed before training."""
import json

from .conftest import run_cli

FAST = ["--runtime", "onnxruntime", "--min-runs", "3", "--min-seconds", "0.01"]
V = "mobilenet_v3_small_0.75_96"


def test_variant_is_exported_and_timed_at_each_precision(write_budget):
    budget = write_budget("name: t\nflops_per_sec: 1G\nstorage_kb: 100000\ntarget_fps: 1\nmin_accuracy: 0.1\n")
    r = run_cli("bench", "--variant", V, "--precision", "fp32,int8", "--num-classes", "10", "--budget", budget,
                "--json", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout)
    rows = {x["precision"]: x for x in report["results"]}
    assert set(rows) == {"fp32", "int8"} and all(x["model"].startswith(f"{V}/") for x in rows.values())
    assert all(x["input_shape"] == [1, 3, 96, 96] and x["p50_ms"] > 0 for x in rows.values())
    assert rows["int8"]["int8_vs_fp32"] > 0 and rows["int8"]["size_bytes"] < rows["fp32"]["size_bytes"] / 2
    assert report["variants"]["names"] == [V] and "noise" in report["variants"]["calibration"]
    lines = {ln["constraint"] for ln in report["budget"]["lines"]}
    assert {"storage_kb", "target_fps"} <= lines and "accuracy" not in lines  # untrained: no accuracy line


def test_bad_variant_requests_are_one_line_exit_2():
    r = run_cli("bench", "--variant", "mobilenet_v3_smal_0.75_96", *FAST)
    assert r.returncode == 2 and f"did you mean {V}" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("bench", "--variant", V, "--data", ".", *FAST)
    assert r.returncode == 2 and "no accuracy" in r.stderr
    r = run_cli("bench", "--calib", ".", *FAST)
    assert r.returncode == 2 and "--variant only" in r.stderr
    r = run_cli("bench", *FAST)
    assert r.returncode == 2 and "MODEL" in r.stderr
