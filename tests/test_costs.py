import json

import pytest

from edgefit import costs, zoo
from edgefit.budget import budget_from_mapping
from edgefit.trace import measure_variant

OUTSIDE_TABLE = costs.TABLE_CLASSES[1] + 1  # a class count the shipped table does not give: traced and cached


def test_the_shipped_cost_table_is_the_tracers():
    """model_zoo/cost_table.json (make_cost_table.py) gives, for a class count between its two traces, exactly what
    the tracer measures now: every zoo variant at 10 classes, and a few at an odd count."""
    from edgefit.trace import measure_variants

    table = costs.table_stats(10)
    assert table is not None, "the shipped table is stale: run model_zoo/make_cost_table.py"
    traced = {n: s.to_dict() for n, s in measure_variants(zoo.variants(), 10).items()}
    assert table == traced
    some = zoo.variants()[::15]
    assert {v.name: costs.table_stats(37)[v.name] for v in some} == \
        {n: s.to_dict() for n, s in measure_variants(some, 37).items()}


def test_a_first_select_needs_no_tracing_and_no_torch(tmp_path):
    """With an empty cache folder, select's statistics come from the shipped table: torch is never imported."""
    import subprocess
    import sys

    code = ("import sys; from edgefit.costs import zoo_stats; s = zoo_stats(10); "
            "print(len(s), 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**__import__("os").environ, "EDGEFIT_CACHE_DIR": str(tmp_path / "empty")})
    assert r.returncode == 0 and r.stdout.split() == [str(len(zoo.variants())), "False"], r.stderr[-1500:]
    assert not (tmp_path / "empty").exists()  # nothing to cache


def test_a_stale_table_is_not_used(monkeypatch):
    monkeypatch.setattr(costs, "COST_MODEL_VERSION", costs.COST_MODEL_VERSION + 1)
    assert costs.table_stats(10) is None
    monkeypatch.undo()
    assert costs.table_stats(OUTSIDE_TABLE) is None and costs.table_stats(10) is not None


def test_cache_is_keyed_and_reused(monkeypatch):
    two = zoo.variants()[:2]
    monkeypatch.setattr(zoo, "variants", lambda: two)  # outside the table's classes, a two-variant zoo is traced
    stats = costs.zoo_stats(OUTSIDE_TABLE)
    path = costs.cache_path(OUTSIDE_TABLE)
    assert path.is_file() and costs.cache_path(10) != path
    assert json.loads(path.read_text())["variants"] == stats

    def boom(*a, **k):
        raise AssertionError("a warm cache must not measure again")

    monkeypatch.setattr("edgefit.trace.measure_variants", boom)
    assert costs.zoo_stats(OUTSIDE_TABLE) == stats


def test_damaged_cache_is_rebuilt(monkeypatch):
    two = zoo.variants()[:2]
    monkeypatch.setattr(zoo, "variants", lambda: two)  # a two-variant zoo: the rebuild, not its size, is tested
    stats = costs.zoo_stats(OUTSIDE_TABLE + 1)
    path = costs.cache_path(OUTSIDE_TABLE + 1)
    assert set(stats) == {v.name for v in two}
    path.write_text("{not json")
    assert costs.zoo_stats(OUTSIDE_TABLE + 1) == stats
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
