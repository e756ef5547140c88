"""Latency profiles: the fit recovers known kernel rates; the budget key fails clearly; a real profile
predicts the same network identically in select and bench."""
import json
import random

import pytest

from edgefit.benchmark.latency_model import fit, predict_ms

from .conftest import run_cli

BASE = "name: host\nflops_per_sec: 1G\nstorage_kb: 100000\ntarget_fps: 1\nmin_accuracy: 0.1\nprecision: float32\n"
SMALL = "mobilenet_v3_small_minimal"


def _synthetic_network(rng, name):
    """Kernels whose time is known: conv 1 us per 50k MACs + 3 us, add 1 us per 20k elements + 2 us; the
    network adds 40 us plus 1.5 us per kernel."""
    kernels = []
    for i in range(rng.randint(10, 40)):
        c, hw, k = rng.choice([16, 32, 64, 128]), rng.choice([7, 14, 28, 56]), rng.choice([1, 3])
        if i % 3:
            macs = c * hw * hw * c * k * k
            kernels.append({"node": f"n{i}", "op": "Conv", "inputs": [[1, c, hw, hw], [c, c, k, k]],
                            "output": [1, c, hw, hw], "us": macs / 50e3 + 3})
        else:
            kernels.append({"node": f"n{i}", "op": "Add", "inputs": [[1, c, hw, hw], [1, c, hw, hw]],
                            "output": [1, c, hw, hw], "us": c * hw * hw / 20e3 + 2})
    true_ms = (sum(k["us"] for k in kernels) + 40 + 1.5 * len(kernels)) / 1000
    return {"name": name, "kernels": kernels, "measured_ms": true_ms}


def test_fit_recovers_known_rates_on_unseen_networks():
    rng = random.Random(0)
    nets = [_synthetic_network(rng, f"net{i}") for i in range(60)]
    model = fit(nets[:45])
    errors = [abs(predict_ms(model, n["kernels"]) / n["measured_ms"] - 1) for n in nets[45:]]
    assert max(errors) < 0.05, errors
    # the network's own costs are found: 40 us plus 1.5 us per kernel
    assert model["network"]["b_ms_per_kernel"] == pytest.approx(0.0015, rel=0.2)
    assert model["network"]["a_ms"] == pytest.approx(0.040, rel=0.2)


@pytest.mark.parametrize("content, expected", [
    (None, "not found"),
    ("{not json", "not readable JSON"),
    ('{"schema": "something-else"}', "not a latency profile"),
    ('{"schema": "edgefit-latency-profile/1", "model_version": 0}', "stale"),
    ('{"schema": "edgefit-latency-profile/1", "model_version": 2, "runtime": "tensorrt", "precision": "fp32"}',
     "runtime 'tensorrt'"),
])
def test_budget_latency_profile_key_fails_in_one_line(write_budget, tmp_path, content, expected):
    if content is not None:
        (tmp_path / "p.json").write_text(content)
    budget = write_budget(BASE + "latency_profile: p.json\n")
    r = run_cli("select", budget)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert expected in r.stderr and "latency_profile" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    d = tmp_path_factory.mktemp("profile")
    held = f"{SMALL}_1.0_96"
    r = run_cli("calibrate", "--runtime", "onnxruntime", "--threads", "1", "--min-seconds", "0.05", "--profile",
                d / "p.json", "--budget-minutes", "0.5", "--exclude-variants", held, "--out", d / "snippet.yaml",
                "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    return d, held, json.loads(r.stdout)


@pytest.mark.slow
def test_calibrate_writes_a_profile_that_excludes_what_it_was_told(profile):
    d, held, report = profile
    p = json.loads((d / "p.json").read_text())
    assert p["schema"] == "edgefit-latency-profile/1" and p["runtime"] == "onnxruntime" and p["threads"] == 1
    assert held not in p["networks"] and len(p["networks"]) >= 6 and p["samples"] > 100
    assert 0 <= p["fit_quality"]["share_within_10pct"] <= 1 and p["fit_quality"]["held_out_networks"]
    assert p["device"]["cores"] and report["latency_profile"]["networks"] == p["networks"]
    assert "latency_profile: p.json" in (d / "snippet.yaml").read_text()


@pytest.mark.slow
def test_select_and_bench_predict_one_network_alike_with_the_profile(profile, write_budget):
    d, held, _ = profile
    budget = write_budget(BASE + f"latency_profile: {d / 'p.json'}\n")
    s = run_cli("select", budget, "--family", SMALL, "--json")
    assert s.returncode in (0, 1), s.stderr[-2000:]
    sel = json.loads(s.stdout)
    cand = next(c for c in sel["feasible"] + sel["rejected"] if c["name"] == held)
    assert cand["latency_method"].startswith("latency profile p.json (onnxruntime fp32")
    b = run_cli("bench", "--variant", held, "--precision", "fp32", "--runtime", "onnxruntime", "--budget", budget,
                "--json", "--min-runs", "3", "--min-seconds", "0.01")
    assert b.returncode in (0, 1), b.stderr[-2000:]
    line = next(ln for ln in json.loads(b.stdout)["budget"]["lines"] if ln["constraint"] == "target_fps")
    assert line["value"] == pytest.approx(cand["fps"], rel=1e-3)
    int8 = write_budget(BASE.replace("float32", "int8") + f"latency_profile: {d / 'p.json'}\n", "int8.yaml")
    s = run_cli("select", int8, "--family", SMALL, "--json")
    method = json.loads(s.stdout)["feasible"][0]["latency_method"]
    assert method.startswith("2 x MACs") and "not applied: the network runs onnxruntime int8" in method


@pytest.mark.slow
def test_pruning_to_a_budget_predicts_latency_with_its_profile(profile, write_budget):
    """compress --budget and the search's pruned candidates time each pruned network with the profile."""
    import torch

    from edgefit import zoo
    from edgefit.benchmark.latency_profile import load_profile, model_graph
    from edgefit.budget import load_budget
    from edgefit.compress import pruned_copy, ratio_for_budget

    d, held, _ = profile
    v = zoo.get_variant(held)
    torch.manual_seed(0)
    model = zoo.build_model(v, 1000).eval()
    prof = load_profile(d / "p.json")
    full_ms = prof.predict_ms(model_graph(model, v.resolution, load_budget(write_budget(
        BASE + f"latency_profile: {d / 'p.json'}\n"))).kernels)
    budget = load_budget(write_budget(BASE.replace("target_fps: 1", f"target_fps: {1000 / full_ms * 1.15:.1f}")
                                      + f"latency_profile: {d / 'p.json'}\n"))
    ratio, tried = ratio_for_budget(model, v.resolution, budget, 8, most=0.6)
    assert ratio > 0 and all(t["latency_method"].startswith("latency profile p.json") for t in tried)
    assert tried[0]["fails"] == ["target_fps"] and not tried[-1]["fails"]
    pruned = pruned_copy(model, v.resolution, ratio, 8)
    assert tried[-1]["fps"] == pytest.approx(1000 / prof.predict_ms(model_graph(pruned, v.resolution, budget).kernels),
                                             rel=1e-3)


@pytest.fixture(scope="module")
def tflite_net(tmp_path_factory):
    """An untrained zoo network converted as export converts it, from an ONNX file not named model.onnx
    (onnx2tf names its outputs after the input file)."""
    import torch

    from edgefit import zoo
    from edgefit.benchmark.zoo_graph import noise
    from edgefit.export.deploy_form import deploy_form
    from edgefit.export.onnx_export import to_onnx_bytes
    from edgefit.export.tflite_export import convert

    d = tmp_path_factory.mktemp("tfl")
    v = zoo.get_variant("mobilenet_v2_0.35_96")
    torch.manual_seed(0)
    onnx_path = d / "probe.onnx"
    onnx_path.write_bytes(to_onnx_bytes(deploy_form(zoo.build_model(v, 10).eval()), v.resolution, {}))
    blob = convert(onnx_path, ["fp32"], noise((2, 3, 96, 96)), "float")["fp32"]
    (d / "probe.tflite").write_bytes(blob)
    return d, blob


def test_litert_kernels_are_cut_from_the_network_itself_and_compute_what_they_compute_there(tflite_net):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from edgefit.benchmark.tflite_kernels import _Graph, kernels_of

    _, blob = tflite_net
    g = _Graph(blob)
    ks = kernels_of(blob)
    assert len(ks) == len(g.kernels) and sum(map(len, g.kernels)) == len(g.ops)
    assert all(g.names[k[0]] == "PAD" for k in g.kernels if len(k) == 2)  # a PAD goes with the conv it feeds
    assert "PAD" not in {k["op"] for k in ks} and any(len(k) == 2 for k in g.kernels)
    for k in ks:
        if k["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):  # OIHW weights, NCHW activations, as onnxruntime's
            assert k["inputs"][1][0] == k["output"][1] and len(k["output"]) == 4
            assert k["inputs"][1][1] == (1 if k["op"] == "DEPTHWISE_CONV_2D" else k["inputs"][0][1])
    whole = Interpreter(model_content=blob, experimental_preserve_all_tensors=True)
    whole.allocate_tensors()
    inp = whole.get_input_details()[0]
    whole.set_tensor(inp["index"], np.random.default_rng(0).standard_normal(inp["shape"]).astype(np.float32))
    whole.invoke()
    for kernel in (g.kernels[len(g.kernels) // 2], next(k for k in g.kernels if len(k) == 2)):
        alone = Interpreter(model_content=g.alone(kernel))
        alone.allocate_tensors()
        (src,), out = alone.get_input_details(), alone.get_output_details()[0]
        feed = int(next(t for t in g.ops[kernel[0]].inputs if not g._constant(int(t))))
        alone.set_tensor(src["index"], whole.get_tensor(feed))
        alone.invoke()
        np.testing.assert_allclose(alone.get_tensor(out["index"]),
                                   whole.get_tensor(int(g.ops[kernel[-1]].outputs[0])), rtol=1e-5, atol=1e-5)


def test_a_litert_profile_predicts_a_tflite_artifact_from_its_own_kernels(tflite_net, write_budget):
    from edgefit.benchmark.latency_model import fit, stored
    from edgefit.benchmark.latency_profile import MODEL_VERSION, SCHEMA, load_profile
    from edgefit.benchmark.tflite_kernels import kernels_of, profile_network

    d, blob = tflite_net
    kernels, ms = profile_network(blob, 1)
    assert all(k["us"] > 0 for k in kernels) and 0.3 < sum(k["us"] for k in kernels) / 1000 / ms < 3
    # networks made of the real kernel samples (prefixes of this one) with a known network term
    nets = [{"name": f"part{n}", "kernels": kernels[:n], "measured_ms": sum(k["us"] for k in kernels[:n]) / 1000
             * 1.1 + 0.05} for n in range(8, len(kernels) + 1, 4)]
    (d / "p.json").write_text(json.dumps({"schema": SCHEMA, "model_version": MODEL_VERSION, "runtime": "litert",
                                          "precision": "fp32", "threads": 1, "model": stored(fit(nets))}))
    budget = write_budget(BASE + f"latency_profile: {d / 'p.json'}\n")
    b = run_cli("bench", d / "probe.tflite", d / "probe.onnx", "--budget", budget, "--json", "--min-runs", "3",
                "--min-seconds", "0.01")
    assert b.returncode in (0, 1), b.stderr[-2000:]
    lines = {(ln["model"], ln["constraint"]): ln for ln in json.loads(b.stdout)["budget"]["lines"]}
    fps = lines[("probe.tflite", "target_fps")]  # a bare .tflite: no MAC count, the profile needs none
    assert "latency profile p.json (litert fp32" in fps["note"], fps
    assert fps["value"] == pytest.approx(1000 / load_profile(d / "p.json").predict_ms(kernels_of(blob)), rel=1e-3)
    assert "not applied: the network runs onnxruntime fp32" in lines[("probe.onnx", "target_fps")]["note"]


def test_a_zoo_graph_is_cached_and_the_cache_holds_what_a_fresh_conversion_makes(_isolated):
    """The cache's premise: a zoo variant's deployed graph (seeded, untrained) is the same bytes every time; the
    second call reads it back from edgefit's cache folder (the session's temporary one here)."""
    from edgefit import zoo
    from edgefit.benchmark.zoo_graph import _cached, variant_graph

    v = zoo.get_variant("mobilenet_v3_small_minimal_1.0_96")
    for precision, prune in (("int8", 0.0), ("fp32", 0.25)):
        path = _cached(v.name + (f".pruned{prune:g}" if prune else ""), 5, precision, "onnxruntime")
        path.unlink(missing_ok=True)
        first = variant_graph(v, 5, precision, "onnxruntime", prune)
        assert path.is_file() and path.read_bytes() == first and str(path).startswith(str(_isolated))
        path.unlink()
        assert variant_graph(v, 5, precision, "onnxruntime", prune) == first  # converted again: the same bytes
        path.write_bytes(b"cached")
        assert variant_graph(v, 5, precision, "onnxruntime", prune) == b"cached"  # read back, not converted
        path.unlink()
