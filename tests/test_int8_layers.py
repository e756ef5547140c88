"""Per-layer int8 error and the float fallback, on a planted quantization-hostile layer."""
import json
import shutil

import pytest

from edgefit import checkpoint
from edgefit.export import export

from .conftest import run_cli

FACTOR = 1000.0  # one channel's range against the others'


def _quietest_channel(run_dir, module: str) -> tuple[int, float]:
    """(channel, its mean): the output channel of `module` that tells the classes apart least (smallest ratio of
    between-class to within-class variance of its spatial mean) on the run's validation images."""
    import torch

    from edgefit.data.images import split_images

    source = checkpoint.open_source(run_dir)
    model, seen = source.model(), []
    hook = dict(model.named_modules())[module].register_forward_hook(lambda m, i, o: seen.append(o.mean((2, 3))))
    images = split_images(source, "val", None)
    with torch.no_grad():
        model(images.x)
    hook.remove()
    f, y = seen[0], torch.as_tensor(images.labels)
    means = torch.stack([f[y == c].mean(0) for c in y.unique()])
    within = torch.stack([f[y == c].var(0, unbiased=False) for c in y.unique()]).mean(0)
    ch = int((means.var(0, unbiased=False) / (within + 1e-6)).argmin())
    return ch, float(f[:, ch].mean())


def _plant_outlier(run_dir, tmp_path):
    """A copy of the trained run whose last block's quietest output channel (the one that tells the classes apart
    least) is held at FACTOR times its mean (its projection weights zeroed, its batch norm's bias set) and whose
    consumer (conv_head) divides that input channel by the same factor: the float network is the trained one with
    that channel held at its mean, and exports faithfully; the int8 tensor between them gets one per-tensor scale
    set by the constant channel, every other channel rounds away, and what is left tells no class from another.
    Returns (run dir, the ONNX node name fragment of the planted layer)."""
    out = shutil.copytree(run_dir, tmp_path / "planted")
    ck = checkpoint.load(out / "best.pt")
    sd = ck["state_dict"]
    last = max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    bn, pwl = f"blocks.{last}.0.bn3", f"blocks.{last}.0.conv_pwl.weight"
    assert pwl in sd and sd["conv_head.weight"].shape[1] == sd[f"{bn}.weight"].shape[0]
    ch, mean = _quietest_channel(run_dir, bn)
    held = FACTOR * max(abs(mean), 1.0) * (1.0 if mean >= 0 else -1.0)
    sd[pwl][ch] = 0.0
    sd[f"{bn}.running_mean"][ch], sd[f"{bn}.weight"][ch], sd[f"{bn}.bias"][ch] = 0.0, 1.0, held
    sd["conv_head.weight"][:, ch] *= mean / held
    checkpoint.save(out / "best.pt", ck)
    return out, f"blocks.{last}.0/conv_pwl"


@pytest.mark.slow
def test_verify_layers_ranks_a_planted_outlier_first_and_the_fallback_keeps_it_float(trained_run, tmp_path):
    planted, node = _plant_outlier(trained_run, tmp_path)
    art = tmp_path / "art"
    export(planted, art, formats="onnx", precisions="fp32,int8", calib_samples=64, verify=False)
    r = run_cli("verify", art, "--layers", "--json")
    assert r.returncode == 1, r.stderr[-2000:]  # the float export agrees; int8 loses the planted layer's signal
    report = json.loads(r.stdout)
    fp32, int8 = (next(a for a in report["artifacts"] if a["precision"] == p) for p in ("fp32", "int8"))
    assert fp32["passed"] and not int8["passed"] and "layers" not in fp32
    ranked = int8["layers"]
    assert node in ranked[0]["node"] and ranked[0]["op_type"] == "Conv", ranked[:3]
    assert ranked[0]["channel_sqnr_db"] < 5 and ranked[1]["channel_sqnr_db"] > 25  # every other channel rounds away
    assert ranked[0]["tensor_sqnr_db"] > ranked[0]["channel_sqnr_db"] + 10  # the tensor SQNR understates it
    r = run_cli("verify", art, "--layers")
    assert node in r.stdout.split("worst of")[1].splitlines()[1]  # the printed table, worst first

    m = export(planted, art, formats="onnx", precisions="int8", calib_samples=64)
    fb = m["artifacts"][0]["float_fallback"]
    assert fb["agreement_before"] < 0.98 <= fb["agreement"] and fb["passed"]
    assert fb["float_tensors"] == [ranked[0]["tensor"]] and len(fb["float_nodes"]) == 2  # producer + conv_head
    assert fb["size_bytes"] > fb["size_bytes_before"] and fb["p50_ms"] > 0  # the cost of the float layer
    v = m["verify"]
    assert v["passed"] and v["artifacts"][0]["top1_agreement"] == pytest.approx(fb["agreement"], abs=0.01)
    on_disk = json.loads((art / "edgefit.json").read_text())
    assert on_disk["artifacts"][0]["float_fallback"]["float_tensors"] == fb["float_tensors"]
    assert on_disk["artifacts"][0]["size_bytes"] == (art / "model_int8.onnx").stat().st_size


def _tflite_channels(art, tensor):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(art / "model_int8.tflite"))
    return next(int(t["shape"][-1]) for t in it.get_tensor_details() if t["name"] == tensor)


@pytest.mark.slow
def test_tflite_layers_through_litert_debugger_rank_the_planted_outlier_and_the_denylist_fallback_passes(
        trained_run, tmp_path):
    planted, _ = _plant_outlier(trained_run, tmp_path)
    art = tmp_path / "art"
    planted_channels = checkpoint.load(planted / "best.pt")["state_dict"]["conv_head.weight"].shape[1]
    m = export(planted, art, formats="tflite", precisions="int8", calib_samples=64)
    a = m["artifacts"][0]
    fb = a["float_fallback"]
    worst = fb["worst_layers"]  # LiteRT's debugger: each quantized op's own error, worst first
    assert worst[0]["op_type"] == "CONV_2D" and worst[0]["channel_sqnr_db"] < 5, worst[:3]
    # its consumers see its lost signal too (0 dB); equal errors rank upstream first
    assert _tflite_channels(art, worst[0]["tensor"]) == planted_channels  # the planted tensor (names are stable)
    assert fb["agreement_before"] < 0.98 <= fb["agreement"] and fb["passed"]
    assert fb["float_tensors"] == [worst[0]["tensor"]] and len(fb["float_nodes"]) == 2  # it and conv_head
    assert fb["size_bytes"] > fb["size_bytes_before"] and fb["p50_ms"] > 0  # the cost of the float layers
    assert a["undelegated_ops"] == [] and a["size_bytes"] == (art / "model_int8.tflite").stat().st_size
    assert m["verify"]["passed"]
    assert m["verify"]["artifacts"][0]["top1_agreement"] == pytest.approx(fb["agreement"], abs=0.01)

    r = run_cli("verify", art, "--layers", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(r.stdout)["artifacts"][0]
    assert row["layers_calibration"].startswith("as exported (64 images")
    assert row["requantized_agreement"] == row["artifact_agreement"] == row["top1_agreement"]  # same model rebuilt
    assert worst[0]["tensor"] not in {x["tensor"] for x in row["layers"]}  # kept float: no quantized op there
    assert row["layers"][0]["channel_sqnr_db"] > 10  # what is left quantized keeps its signal


def _int8_export(passed: bool, top1: float, float_layers: dict):
    from edgefit.pipeline.records import Evaluated, Exported, Parity

    f = "model_int8.tflite"
    ex = Exported(files=[f], final=f, io="float", sha256={f: "x"}, macs=1, params=1,
                  parity=Parity(passed=passed, samples=200, images="val", artifacts=[]), float_layers=float_layers)
    return ex, Evaluated(test_images=100, float_top1=0.95, artifact_top1={f: top1}, chance=0.1, per_class_images=[],
                         stats={})


def test_build_tries_qat_when_parity_needed_float_layers_and_keeps_the_better_measured_result():
    from types import SimpleNamespace

    from edgefit.pipeline.steps import int8_lost, score

    budget = SimpleNamespace(min_accuracy=0.8)
    fallback = _int8_export(True, 0.94, {"model_int8.tflite": 2})
    assert "2 layer(s) kept float" in int8_lost(*fallback, budget)
    assert int8_lost(*_int8_export(True, 0.94, {}), budget) is None
    assert int8_lost(*_int8_export(False, 0.94, {}), budget) == "post-training int8 lost parity or accuracy"
    assert score(*_int8_export(True, 0.94, {})) > score(*fallback)  # QAT as accurate with no float layer wins
    assert score(*fallback) > score(*_int8_export(True, 0.93, {}))  # a less accurate QAT does not
    assert score(*fallback) > score(*_int8_export(False, 0.96, {}))  # nor one that fails parity
