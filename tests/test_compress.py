import json
import subprocess
import sys

import pytest
import torch

from edgefit import arch, checkpoint, zoo
from edgefit.budget import budget_from_mapping
from edgefit.compress import pruned_copy, ratio_for_budget, stats_of

from .conftest import ROOT, run_cli

ONE_PER_FAMILY = ["mobilenet_v1_0.25_128", "mobilenet_v2_0.35_96", "mobilenet_v3_small_0.75_96",
                  "mobilenet_v3_large_minimal_1.0_96", "mobilenet_v4_conv_small_1.0_128"]

RELOAD = """
import sys, torch
sys.modules["torch_pruning"] = None  # reloading must not need the pruning library
from edgefit import checkpoint
ck = checkpoint.load(sys.argv[1])
model = checkpoint.build_model(ck)
x = torch.load(sys.argv[2], weights_only=True)
torch.save(model(x).detach(), sys.argv[3])
"""


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_pruning_every_family_reloads_and_exports(name, tmp_path):
    import onnx

    from edgefit.export.onnx_export import to_onnx_bytes

    v = zoo.get_variant(name)
    torch.manual_seed(0)
    model = zoo.build_model(v, 5).eval()
    before = stats_of(model, v.resolution)
    pruned = pruned_copy(model, v.resolution, 0.2, 8)
    after = stats_of(pruned, v.resolution)
    assert after["macs"] < before["macs"] and after["params"] < before["params"]
    convs = [m for m in pruned.modules() if isinstance(m, torch.nn.Conv2d) and m is not pruned.conv_stem]
    originals = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m is not model.conv_stem]
    assert any(m.out_channels % 8 == 0 and m.out_channels < o.out_channels
               for m, o in zip(convs, originals, strict=True))
    ck = tmp_path / "p.pt"
    checkpoint.save(ck, checkpoint.model_checkpoint(pruned, name, list("abcde"), {"resolution": v.resolution},
                                                    {"source": "none"}, extra={"arch": arch.describe(pruned)}))
    x = torch.randn(2, 3, v.resolution, v.resolution)
    torch.save(x, tmp_path / "x.pt")
    r = subprocess.run([sys.executable, "-c", RELOAD, str(ck), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    with torch.no_grad():
        assert torch.allclose(torch.load(tmp_path / "y.pt", weights_only=True), pruned(x), atol=1e-5)
    onnx.checker.check_model(onnx.load_from_string(to_onnx_bytes(pruned, v.resolution, {})))


def test_budget_stops_at_first_fitting_ratio():
    v = zoo.get_variant("mobilenet_v2_0.35_96")
    model = zoo.build_model(v, 10).eval()
    macs = stats_of(model, v.resolution)["macs"]
    b = budget_from_mapping({"name": "t", "flops_per_sec": 2 * macs * 10 * 0.7, "storage_kb": 100000,
                             "target_fps": 10, "min_accuracy": 0.0})  # needs about 30% fewer MACs
    ratio, tried = ratio_for_budget(model, v.resolution, b, 8)
    assert tried[-1]["channel_ratio"] == ratio and not tried[-1]["fails"]
    assert all(t["fails"] == ["target_fps"] for t in tried[:-1]) and len(tried) >= 2
    assert tried[-1]["macs"] <= macs * 0.7


@pytest.mark.slow
def test_compress_run_end_to_end(trained_run, tmp_path):
    run = trained_run
    r = run_cli("compress", run, "--prune-ratio", "0.3", "--steps", "2", "--finetune-epochs", "2",
                "--batch-size", "8", "--out", tmp_path / "pruned", "--json")
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)["compress"]
    assert c["after"]["macs"] <= c["before"]["macs"] * 0.7 + 1
    assert {"host_latency_ms_onnxruntime", "val_top1", "predicted_int8_tflite_kb"} <= set(c["after"])
    speedup = c["before"]["host_latency_ms_onnxruntime"] / c["after"]["host_latency_ms_onnxruntime"]
    assert c["host_speedup"] == pytest.approx(speedup, rel=1e-2) and c["faster"] == (c["host_speedup"] > 1.05)
    assert c["verdict"].startswith("NOT faster") != c["faster"]  # the verdict says what the figures say
    ck = checkpoint.load(tmp_path / "pruned" / "best.pt")
    assert ck["arch"] and checkpoint.build_model(ck)(torch.zeros(1, 3, 96, 96)).shape == (1, 3)
    e = run_cli("export", tmp_path / "pruned", "--format", "onnx", "--precision", "fp32", "--out", tmp_path / "art")
    assert e.returncode == 0, e.stdout + e.stderr


def test_compress_needs_exactly_one_target(tmp_path):
    r = run_cli("compress", tmp_path, "--prune-ratio", "0.3", "--target-macs", "1e6", "--out", tmp_path / "o")
    assert r.returncode == 2 and "exactly one" in r.stderr


def test_qat_simulates_int8_and_keeps_plain_weights():
    from edgefit.compress.qat import QatModel

    v = zoo.get_variant("mobilenet_v2_0.35_96")
    torch.manual_seed(0)
    model = zoo.build_model(v, 3).eval()
    q = QatModel(model, v.resolution).eval()
    x = torch.randn(3, 3, v.resolution, v.resolution)
    with torch.no_grad():
        y_float, y_q = model(x), q(x)
    assert y_q.shape == y_float.shape and not torch.allclose(y_q, y_float)  # fake quantization is active
    assert any("activation_post_process" in k for k in q.state_dict())
    sd = q.float_state_dict()
    assert list(sd) == list(model.state_dict())
    plain = zoo.build_model(v, 3)
    plain.load_state_dict(sd)  # strict: the plain network takes them back


@pytest.mark.slow
def test_qat_run_exports_int8_that_passes_verify(trained_run, tmp_path):
    r = run_cli("compress", trained_run, "--qat", "--qat-epochs", "1", "--batch-size", "8",
                "--out", tmp_path / "qat", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    q = s["compress"]["qat"]
    assert q["epochs"] == 1 and q["int8_onnx_val_top1_after"] >= 0.9  # a confident 3-class model stays so
    ck = checkpoint.load(tmp_path / "qat" / "best.pt")
    assert ck["qat"] is True and not any("activation_post_process" in k for k in ck["state_dict"])
    r = run_cli("export", tmp_path / "qat", "--precision", "int8", "--out", tmp_path / "art")
    assert r.returncode == 0, r.stderr + r.stdout
    manifest = json.loads((tmp_path / "art" / "edgefit.json").read_text())
    assert {a["file"] for a in manifest["artifacts"]} == {"model_int8.onnx", "model_int8.tflite"}
    r = run_cli("verify", tmp_path / "art")
    assert r.returncode == 0 and r.stdout.count(" ok") == 2, r.stdout + r.stderr


def test_qat_with_pruning_options_conflict_and_qat_alone_is_enough(tmp_path):
    r = run_cli("compress", tmp_path, "--qat", "--out", tmp_path / "o")
    assert r.returncode == 2 and "not an `edgefit train` run directory" in r.stderr
    r = run_cli("compress", tmp_path, "--out", tmp_path / "o")
    assert r.returncode == 2 and "exactly one" in r.stderr
