import json
from xml.etree import ElementTree as ET

import pytest
import torch

from .conftest import plain_torch_onnx, run_cli

FAST = ["--min-runs", "5", "--min-seconds", "0.05"]


@pytest.fixture(scope="module")
def plain_onnx(tmp_path_factory):
    """An ONNX model made with plain torch.onnx, not by edgefit."""
    return plain_torch_onnx(tmp_path_factory.mktemp("plain") / "tiny.onnx", (1, 3, 32, 32), {0: "batch"})


@pytest.fixture(scope="module")
def plain_tflite(tmp_path_factory):
    from edgefit.export.tflite_export import import_tensorflow

    tf = import_tensorflow()

    path = tmp_path_factory.mktemp("tfl") / "tiny.tflite"
    model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Conv2D(8, 3),
                                 tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(4)])
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def _budget(write_budget, storage_kb=1000, fps=1):
    return write_budget(f"name: t\nflops_per_sec: 1G\nstorage_kb: {storage_kb}\ntarget_fps: {fps}\nmin_accuracy: 0.1\n")


def test_bench_onnx_and_tflite_json(plain_onnx, plain_tflite, tmp_path):
    r = run_cli("bench", plain_onnx, plain_tflite, "--json", "--threads", "1", "--batch", "2", *FAST)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    rows = {x["runtime"]: x for x in d["results"]}
    assert set(rows) == {"onnxruntime", "litert"}
    for row in rows.values():
        assert {"model", "runtime", "device", "threads", "p50_ms", "p90_ms", "p99_ms", "fps", "peak_rss_mb"} <= set(row)
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] and row["runs"] >= 5
        assert row["input_shape"][0] == 2
    assert rows["onnxruntime"]["input_shape"] == [2, 3, 32, 32] and rows["litert"]["input_shape"] == [2, 32, 32, 3]
    assert d["machine"]["cores"] and d["machine"]["libraries"]["onnxruntime"]


def test_budget_pass_and_fail(plain_onnx, write_budget, tmp_path):
    ok = run_cli("bench", plain_onnx, "--budget", _budget(write_budget), *FAST)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Budget `t`: PASS" in ok.stdout
    junit = tmp_path / "b.xml"
    bad = run_cli("bench", plain_onnx, "--budget", _budget(write_budget, storage_kb=0.5), "--junit", junit,
                  "--markdown", tmp_path / "b.md", "--plot", tmp_path / "b.png", *FAST)
    assert bad.returncode == 1
    assert "| storage_kb |" in bad.stdout and "FAIL" in bad.stdout
    suite = ET.parse(junit).getroot()
    cases = suite.findall("testcase")
    assert suite.tag == "testsuite" and len(cases) == 4  # storage, target fps, host fps, accuracy (no ram_kb)
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["storage_kb"]
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG" and "storage_kb" in (tmp_path / "b.md").read_text()


def test_target_fps_from_onnx_macs(plain_onnx, write_budget):
    r = run_cli("bench", plain_onnx, "--budget", _budget(write_budget, fps=1e6), "--json", *FAST)
    assert r.returncode == 1
    lines = {ln["constraint"]: ln for ln in json.loads(r.stdout)["budget"]["lines"]}
    macs = 32 * 32 * 8 * 27 + 8 * 4
    assert lines["target_fps"]["value"] == pytest.approx(1e9 / (2 * macs), rel=1e-3)
    assert lines["target_fps"]["passed"] is False and lines["host_fps"]["gating"] is False


def test_baseline_regression(plain_onnx, tmp_path):
    base = tmp_path / "base.json"
    assert run_cli("bench", plain_onnx, "--json", base, *FAST).returncode == 0
    d = json.loads(base.read_text())
    d["results"][0]["p50_ms"] /= 100  # the old run was 100x faster
    d["results"][0]["size_bytes"] //= 2
    base.write_text(json.dumps(d))
    r = run_cli("bench", plain_onnx, "--baseline", base, "--json", *FAST)
    assert r.returncode == 1
    regs = {g["metric"] for g in json.loads(r.stdout)["baseline"]["regressions"]}
    assert regs == {"p50_ms", "size_bytes"}


def test_cuda_skipped_cleanly_without_gpu(plain_onnx):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = run_cli("bench", plain_onnx, "--device", "cpu,cuda", "--json", *FAST)
    assert r.returncode == 0
    rows = json.loads(r.stdout)["results"]
    assert [x["device"] for x in rows] == ["cpu", "cuda"]
    assert "skipped" in rows[1] and "CUDA" in rows[1]["skipped"]


@pytest.mark.parametrize("args,expected", [
    (["nope.onnx"], "model not found"),
    (["--runtime", "tvm"], "unknown 'tvm'"),
])
def test_bad_bench_input(plain_onnx, args, expected):
    r = run_cli("bench", *([plain_onnx] if args[0].startswith("--") else []), *args)
    assert r.returncode == 2 and expected in r.stderr


@pytest.mark.parametrize("suffix,runtime", [(".tflite", "litert"), (".onnx", "onnxruntime")])
def test_corrupt_model_file_is_bad_input_not_a_traceback(tmp_path, suffix, runtime):
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"not a model")
    r = run_cli("bench", junk, *FAST)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and f"{runtime} cannot load it" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
