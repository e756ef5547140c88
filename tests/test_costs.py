import json

import pytest

from edgefit import costs, zoo
from edgefit.budget import budget_from_mapping
from edgefit.trace import measure_variant


def test_cache_is_keyed_and_reused(monkeypatch):
    stats = costs.zoo_stats(1000)
    path = costs.cache_path(1000)
    assert path.is_file() and costs.cache_path(10) != path
    assert json.loads(path.read_text())["variants"] == stats

    def boom(*a, **k):
        raise AssertionError("a warm cache must not measure again")

    monkeypatch.setattr("edgefit.trace.measure_variants", boom)
    assert costs.zoo_stats(1000) == stats


def test_damaged_cache_is_rebuilt(monkeypatch):
    two = zoo.variants()[:2]
    monkeypatch.setattr(zoo, "variants", lambda: two)  # a two-variant zoo: the rebuild, not its size, is tested
    stats = costs.zoo_stats(7)
    path = costs.cache_path(7)
    assert set(stats) == {v.name for v in two}
    path.write_text("{not json")
    assert costs.zoo_stats(7) == stats
    assert json.loads(path.read_text())["variants"] == stats


def test_latency_is_two_flops_per_mac():
    s = costs.zoo_stats(1000)["mobilenet_v1_1.0_224"]
    b = budget_from_mapping({"name": "t", "flops_per_sec": "500M", "storage_kb": 1, "target_fps": 1,
                             "min_accuracy": 0.1})
    c = costs.cost(s, b)
    assert c.latency_ms == 2 * s["macs"] / 500e6 * 1000
    assert 0.43 < c.fps < 0.45  # 569 M MACs = 1.14 GFLOP per frame at 500 MFLOP/s
    assert 4.0e6 < c.size_kb * 1024 < 4.8e6  # about 4.24 MB at 8 bits


def test_int8_ram_is_the_tflm_arena_and_depends_on_io():
    s = measure_variant(zoo.get_variant("mobilenet_v2_0.35_96"), 10).to_dict()
    on_float_io, on_int8_io = (costs.peak_ram_bytes(s, "int8", io) for io in ("float", "int8"))
    assert on_int8_io > s["peak_act_elems"]  # persistent memory on top of the activations
    assert on_float_io >= on_int8_io and on_float_io >= 5 * s["input_elems"]
    assert costs.peak_ram_bytes(s, "float32") == 4 * s["peak_act_elems"]
    # TFLM 0.dev20261023 measured 296.3 KB (float I/O) for this network (bench/results/ram_truth_after.json)
    assert on_float_io / 1024 == pytest.approx(296.3, rel=0.05)
    micro = budget_from_mapping({"name": "m", "flops_per_sec": "1G", "storage_kb": 1, "target_fps": 1,
                                 "min_accuracy": 0.1, "runtime": "tflite-micro"})
    c = costs.cost(s, micro)
    assert c.peak_ram_kb == on_int8_io / 1024 and "int8 I/O" in c.figures().ram_kb.how
