import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgefit.export import export
from edgefit.export.divergence import tflite_first_divergence
from edgefit.export.parity import parity_inputs
from edgefit.export.verify import verify

from .conftest import run_cli


@pytest.fixture(scope="module")
def trained(trained_run):
    """The session's small confident model (conftest.trained_run)."""
    return trained_run


@pytest.fixture(scope="module")
def exported(exported_art):
    """The session's export of every format and precision (conftest.exported_art), made with sockets blocked."""
    out, manifest, attempts = exported_art
    assert not attempts, f"export tried to reach the network: {attempts}"
    return out, manifest


def test_every_format_and_precision_written_with_parity(exported):
    out, manifest = exported
    files = {a["file"] for a in manifest["artifacts"]}
    assert files == {"model.onnx", "model_int8.onnx", "model.tflite", "model_fp16.tflite", "model_int8.tflite"}
    assert [(n["format"], n["precision"]) for n in manifest["not_written"]] == [("onnx", "fp16")]  # with a reason
    report = manifest["verify"]
    assert report["passed"], [(r["file"], r["reasons"]) for r in report["artifacts"]]
    by_file = {r["file"]: r for r in report["artifacts"]}
    for f in ("model.onnx", "model.tflite"):
        assert by_file[f]["max_rel_error"] <= 1e-4 and by_file[f]["top1_agreement"] >= 0.99
    for f in ("model_int8.onnx", "model_int8.tflite"):
        assert by_file[f]["top1_agreement"] >= 0.98
    assert not list(out.glob(".*.tmp")), "no temporary files left behind"


def test_manifest_contract(exported):
    out, _ = exported
    m = json.loads((out / "edgefit.json").read_text())
    assert m["variant"] == "mobilenet_v2_0.35_96" and m["labels"] == ["c0", "c1", "c2"]
    assert {"resolution", "mean", "std", "resize_method"} <= set(m["preprocess"])
    assert len(m["source"]["checkpoint_sha256"]) == 64 and m["edgefit_version"]
    for a in m["artifacts"]:
        assert {"file", "format", "precision", "input_layout", "input", "output", "macs", "params", "size_bytes",
                "sha256"} <= set(a)
        assert a["size_bytes"] == (out / a["file"]).stat().st_size
        assert a["input_layout"] == ("NHWC" if a["format"] == "tflite" else "NCHW")
    assert (out / "labels.txt").read_text().split() == ["c0", "c1", "c2"]
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert props["variant"] == "mobilenet_v2_0.35_96" and json.loads(props["labels"]) == ["c0", "c1", "c2"]


def test_tflite_loads_in_litert(exported):
    from ai_edge_litert.interpreter import Interpreter

    out, _ = exported
    it = Interpreter(model_path=str(out / "model_int8.tflite"))
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    assert list(inp["shape"]) == [1, 96, 96, 3]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
    it.invoke()
    assert it.get_tensor(it.get_output_details()[0]["index"]).shape == (1, 3)


def test_broken_onnx_fails_verify_and_names_the_node(exported, tmp_path):
    from onnx import numpy_helper

    out, _ = exported
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    proto = onnx.load(str(broken / "model.onnx"))
    weights = [i for i in proto.graph.initializer if len(i.dims) == 4]
    target = weights[len(weights) // 2]
    target.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(target) * -3.0, target.name))
    consumer = next(n for n in proto.graph.node if target.name in n.input)
    onnx.save(proto, str(broken / "model.onnx"))
    report = verify(broken, samples=20)
    assert not report["passed"]
    bad = next(r for r in report["artifacts"] if r["file"] == "model.onnx")
    assert not bad["passed"] and bad["first_divergence"]["node"] == consumer.name
    r = run_cli("verify", broken, "--samples", "10")
    assert r.returncode == 1 and consumer.name in r.stdout


def _transpose_depthwise_kernel(tflite: Path, k: int) -> None:
    """Plant a conversion bug in a float TFLite file: the k-th depthwise kernel's spatial axes swapped (the
    kind of layout slip an ONNX -> TFLite converter makes)."""
    from edgefit.export.tflite_export import import_tensorflow

    import_tensorflow()  # in edgefit's import order (tflite_export.import_tensorflow says why)
    from tensorflow.lite.tools import flatbuffer_utils as fb

    m = fb.read_model_from_bytearray(bytearray(tflite.read_bytes()))
    g = m.subgraphs[0]
    op = [o for o in g.operators if fb.opcode_to_name(m, o.opcodeIndex) == "DEPTHWISE_CONV_2D"][k]
    w = g.tensors[op.inputs[1]]
    kernel = np.frombuffer(bytes(m.buffers[w.buffer].data), dtype=np.float32).reshape(w.shape)
    m.buffers[w.buffer].data = np.ascontiguousarray(kernel.transpose(0, 2, 1, 3)).tobytes()
    tflite.write_bytes(bytes(fb.convert_object_to_bytearray(m)))


def test_broken_float_tflite_fails_verify_and_maps_the_first_diverging_layer_back_to_onnx(exported, tmp_path):
    out, _ = exported
    broken = shutil.copytree(out, tmp_path / "broken")
    proto = onnx.load(str(out / "model.onnx"))  # the graph the float TFLite was converted from
    depthwise = [n for n in proto.graph.node if n.op_type == "Conv"
                 and next(a.i for a in n.attribute if a.name == "group") > 1]
    k = len(depthwise) // 2
    _transpose_depthwise_kernel(broken / "model.tflite", k)
    report = verify(broken, samples=20)
    by_file = {r["file"]: r for r in report["artifacts"]}
    bad = by_file["model.tflite"]
    assert not bad["passed"] and by_file["model_fp16.tflite"]["passed"] and by_file["model.onnx"]["passed"]
    d = bad["first_divergence"]
    assert d["node"] == depthwise[k].name and d["op_type"] == "Conv", d
    assert d["max_rel_error"] > 1e-2 and "depthwise" in d["tflite_tensor"]
    producer = next(n for n in proto.graph.node if depthwise[k].input[0] in n.output)  # the layer before it matched
    assert [m["onnx"] for m in d["inputs_matched"]] == [producer.output[0]]
    intact = parity_inputs(out, samples=1)  # the intact file has no diverging layer
    assert tflite_first_divergence(out / "model.tflite", intact.model, intact.xs, 96, 1e-4) is None
    r = run_cli("verify", broken, "--samples", "10")
    assert r.returncode == 1 and f"first diverging layer: {depthwise[k].name}" in r.stdout, r.stdout


@pytest.mark.parametrize("file,content,expected", [
    ("model_int8.tflite", b"not a flatbuffer", "litert cannot load it"),
    ("model.onnx", b"not a protobuf", "onnxruntime cannot load it"),
    ("edgefit.json", b"{", "is not valid JSON"),
])
def test_corrupt_file_in_an_export_directory_is_bad_input(exported, tmp_path, file, content, expected):
    out, _ = exported
    broken = shutil.copytree(out, tmp_path / "broken")
    (broken / file).write_bytes(content)
    before = sorted(p.name for p in broken.iterdir())
    r = run_cli("verify", broken, "--samples", "10")
    assert r.returncode == 2 and expected in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]
    ours = [line for line in r.stderr.splitlines() if line.startswith("edgefit")]  # LiteRT logs its own INFO lines
    assert len(ours) == 1 and expected in ours[0] and sorted(p.name for p in broken.iterdir()) == before


def test_int8_io(trained, tmp_path):
    manifest = export(trained, tmp_path / "io8", formats="tflite", precisions="int8", io="int8", calib_samples=20,
                      samples=20)
    a = manifest["artifacts"][0]
    assert a["input"]["dtype"] == "int8" and a["input"]["quantization"]["scale"] > 0
    assert a["output"]["dtype"] == "int8"
    assert manifest["verify"]["passed"]
    strict = verify(tmp_path / "io8", samples=20, max_rel_error=1e-9)  # applies to int8 too, never ignored
    assert not strict["passed"] and "max relative error" in strict["artifacts"][0]["reasons"][0]


@pytest.mark.parametrize("args,expected", [
    (["--format", "coreml"], "unknown value 'coreml'"),
    (["--format", "onnx", "--precision", "fp16"], "no ONNX fp16 converter"),
    (["--precision", "fp32", "--io", "int8"], "--io int8 applies to int8"),
])
def test_bad_export_options(trained, tmp_path, args, expected):
    r = run_cli("export", trained, "--out", tmp_path / "x", *args)
    assert r.returncode == 2 and expected in r.stderr
    assert not (tmp_path / "x").exists()


def test_bad_source(tmp_path):
    r = run_cli("export", tmp_path / "missing.pt", "--out", tmp_path / "x")
    assert r.returncode == 2 and "not found" in r.stderr


def test_predicted_size_within_10_percent(exported):
    from edgefit import checkpoint
    from edgefit.costs import predicted_size_bytes
    from edgefit.trace import measure

    out, manifest = exported
    stats = measure(checkpoint.build_model(checkpoint.load(out / "reference.pt")), 96).to_dict()
    names = {"fp32": "float32", "fp16": "float16", "int8": "int8"}
    for a in manifest["artifacts"]:
        if a["format"] == "tflite":
            predicted = predicted_size_bytes(stats, names[a["precision"]])
            assert abs(predicted / a["size_bytes"] - 1) <= 0.10, (a["file"], predicted, a["size_bytes"])


def test_bench_compares_each_int8_artifact_with_its_fp32_sibling(exported):
    """Every int8 row carries its latency ratio to the fp32 artifact of the same runtime; a slower one is
    flagged in the Markdown with the ops the export recorded outside the fast path."""
    from edgefit.benchmark.api import BenchOptions, bench
    from edgefit.benchmark.reports import markdown

    out, manifest = exported
    opts = BenchOptions(runtimes=("onnxruntime", "litert"), threads=1, min_runs=5, min_seconds=0.05)
    report = bench([str(out)], opts)
    rows = {Path(r["model"]).name: r for r in report["results"]}
    for int8, fp32 in (("model_int8.onnx", "model.onnx"), ("model_int8.tflite", "model.tflite")):
        ratio = rows[int8]["p50_ms"] / rows[fp32]["p50_ms"]
        assert rows[int8]["int8_vs_fp32"] == pytest.approx(ratio, abs=0.006)
        assert rows[int8]["slower_than_fp32"] == (ratio > 1)
        assert ("int8_vs_fp32" in rows[fp32]) is False
    by_file = {a["file"]: a for a in manifest["artifacts"]}
    assert rows["model_int8.tflite"]["outside_fast_path"] == by_file["model_int8.tflite"]["undelegated_ops"] == []
    assert rows["model_int8.onnx"]["outside_fast_path"] == by_file["model_int8.onnx"]["float_islands"]
    md = markdown(report)
    for r in rows.values():
        assert (f"- {r['model']} ({r['runtime']}): " in md) == bool(r.get("slower_than_fp32"))


def test_int8_is_timed_against_fp32_on_this_host_and_a_slower_int8_is_said(exported):
    from edgefit.device.probe import cpu_model
    from edgefit.export.speed import NOTE_ABOVE, PrecisionSpeed

    out, manifest = exported
    speeds = [PrecisionSpeed.from_dict(d) for d in json.loads((out / "edgefit.json").read_text())["precision_speed"]]
    assert {(s.format, s.fp32_file, s.int8_file) for s in speeds} == {("onnx", "model.onnx", "model_int8.onnx"),
                                                                      ("tflite", "model.tflite", "model_int8.tflite")}
    for s in speeds:
        assert s.fp32_p50_ms > 0 and s.int8_p50_ms > 0 and s.cpu == cpu_model()
        assert (s.note() is None) == (s.ratio <= NOTE_ABOVE)
    slower = PrecisionSpeed("tflite", "litert", "Intel Xeon", "model.tflite", "model_int8.tflite", 1.11, 1.51)
    assert "model_int8.tflite runs 1.36x slower than model.tflite" in slower.note() and "Intel Xeon" in slower.note()
    assert PrecisionSpeed("tflite", "litert", "x", "a", "b", 1.0, 1.05).note() is None  # within a short timing's noise
