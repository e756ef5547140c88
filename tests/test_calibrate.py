import json

import pytest

from edgefit.budget import budget_from_mapping, load_budget
from edgefit.costs import latency_seconds

from .conftest import run_cli


def test_calibrate_writes_a_budget_snippet(tmp_path, write_budget):
    snippet = tmp_path / "snippet.yaml"
    r = run_cli("calibrate", "--runtime", "onnxruntime", "--threads", "1", "--min-seconds", "0.05", "--out", snippet,
                "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)["runtimes"]["onnxruntime"]
    assert d["flops_per_sec"] > 1e7 and set(d["op_flops_per_sec"]) == {"standard", "depthwise", "pointwise", "dense"}
    for n in d["networks"].values():
        assert n["flops_per_sec"] == pytest.approx(2 * n["macs"] / (n["p50_ms"] / 1000), rel=1e-2)
    text = snippet.read_text()
    assert text.startswith("# measured by `edgefit calibrate`")
    b = load_budget(write_budget("name: host\nstorage_kb: 1000\ntarget_fps: 10\nmin_accuracy: 0.1\n" + text))
    assert b.flops_per_sec == pytest.approx(d["flops_per_sec"], rel=1e-3)
    assert set(b.op_flops_per_sec) == set(d["op_flops_per_sec"])


def test_per_class_latency():
    stats = {"macs": 100, "macs_by_class": {"depthwise": 30, "pointwise": 60, "standard": 0, "dense": 10}}
    base = {"name": "t", "flops_per_sec": 100, "storage_kb": 1, "target_fps": 1, "min_accuracy": 0.0}
    assert latency_seconds(stats, budget_from_mapping(base)) == pytest.approx(2.0)
    b = budget_from_mapping({**base, "op_flops_per_sec": {"depthwise": 10, "pointwise": 200}})
    assert latency_seconds(stats, b) == pytest.approx(2 * 30 / 10 + 2 * 60 / 200 + 2 * 10 / 100)
