import json

from edgefit import costs
from edgefit.budget import budget_from_mapping


def test_cache_is_keyed_and_reused(monkeypatch):
    stats = costs.zoo_stats(1000)
    path = costs.cache_path(1000)
    assert path.is_file() and costs.cache_path(10) != path
    assert json.loads(path.read_text())["variants"] == stats

    def boom(*a, **k):
        raise AssertionError("a warm cache must not measure again")

    monkeypatch.setattr("edgefit.trace.measure_variant", boom)
    assert costs.zoo_stats(1000) == stats


def test_damaged_cache_is_rebuilt():
    stats = costs.zoo_stats(1000)
    path = costs.cache_path(1000)
    path.write_text("{not json")
    assert costs.zoo_stats(1000) == stats
    assert json.loads(path.read_text())["variants"] == stats


def test_latency_is_two_flops_per_mac():
    s = costs.zoo_stats(1000)["mobilenet_v1_1.0_224"]
    b = budget_from_mapping({"name": "t", "flops_per_sec": "500M", "storage_kb": 1, "target_fps": 1,
                             "min_accuracy": 0.1})
    c = costs.cost(s, b)
    assert c.latency_ms == 2 * s["macs"] / 500e6 * 1000
    assert 0.43 < c.fps < 0.45  # 569 M MACs = 1.14 GFLOP per frame at 500 MFLOP/s
    assert 4.0e6 < c.size_kb * 1024 < 4.8e6  # about 4.24 MB at 8 bits
