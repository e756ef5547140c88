"""Per-layer int8 error and the float fallback, on a planted quantization-hostile layer."""
import json
import shutil

import pytest

from edgefit import checkpoint
from edgefit.export import export

from .conftest import run_cli

FACTOR = 1000.0  # one channel's range against the others'


def _plant_outlier(run_dir, tmp_path):
    """A copy of the trained run whose last block's output channel 0 is FACTOR times larger and whose consumer
    (conv_head) divides that input channel by FACTOR: the float network computes the same function; the int8
    tensor between them gets one per-tensor scale set by the outlier channel, and every other channel rounds
    away. Returns (run dir, the ONNX node name fragment of the planted layer)."""
    out = shutil.copytree(run_dir, tmp_path / "planted")
    ck = checkpoint.load(out / "best.pt")
    sd = ck["state_dict"]
    last = max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    bn = f"blocks.{last}.0.bn3"
    assert f"blocks.{last}.0.conv_pwl.weight" in sd and sd["conv_head.weight"].shape[1] == sd[f"{bn}.weight"].shape[0]
    sd[f"{bn}.weight"][0] *= FACTOR
    sd[f"{bn}.bias"][0] *= FACTOR
    sd["conv_head.weight"][:, 0] /= FACTOR
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
