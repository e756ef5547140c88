"""bench never times a made-up shape, and each model's memory is its own (isolated process)."""
import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from .conftest import plain_torch_onnx, run_cli

FAST = ["--runtime", "onnxruntime", "--min-runs", "3", "--min-seconds", "0.01"]


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory):
    """A foreign model with input [N, 3, ?, ?], as OCR direction classifiers ship."""
    return plain_torch_onnx(tmp_path_factory.mktemp("dyn") / "ocr_like.onnx", (1, 3, 48, 192),
                            {0: "n", 2: "h", 3: "w"}, classes=2)


def test_dynamic_spatial_input_without_a_shape_is_refused(dynamic_onnx):
    r = run_cli("bench", dynamic_onnx, *FAST)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1 and "'x'" in msg and "[?, 3, ?, ?]" in msg and "--input-shape" in msg


def test_input_shape_is_timed_as_given(dynamic_onnx):
    r = run_cli("bench", dynamic_onnx, "--input-shape", "1,3,48,192", "--json", *FAST)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)["results"][0]
    assert row["input_shape"] == [1, 3, 48, 192] and row["input_shape_from"] == "--input-shape"
    assert row["batch"] == 1 and row["fps"] == pytest.approx(1000 / row["p50_ms"], rel=0.01)


@pytest.mark.parametrize("shape", ["1,3,48", "1,4,48,192", "1,3,0,192", "1,3,a,b"])
def test_input_shape_that_does_not_fit_is_bad_input(dynamic_onnx, shape):
    r = run_cli("bench", dynamic_onnx, "--input-shape", shape, *FAST)
    assert r.returncode == 2 and "--input-shape" in r.stderr and "Traceback" not in r.stderr


def _big_onnx(path, mb: int):
    """A Gemm with a `mb` MB float weight: loading and running it must show in its memory figure."""
    n = int(np.sqrt(mb * 2**20 / 4))
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"])], "big",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, n])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_memory_is_each_models_own(dynamic_onnx, tmp_path):
    """The big model first: measured in one process, its peak would stay on every later row."""
    big = _big_onnx(tmp_path / "big.onnx", 64)
    r = run_cli("bench", big, dynamic_onnx, "--input-shape", "1,3,48,192", "--json", *FAST)
    assert r.returncode == 0, r.stderr
    rows = {x["model"]: x for x in json.loads(r.stdout)["results"]}
    b, s = rows["big.onnx"], rows["ocr_like.onnx"]
    assert b["input_shape_from"] == "model" and s["input_shape_from"] == "--input-shape"  # static: its own shape
    assert b["model_rss_mb"] > s["model_rss_mb"] + 60  # 64 MB of weights (onnxruntime holds them twice: ~138 MB)
    assert s["peak_rss_mb"] < b["peak_rss_mb"] - 40
