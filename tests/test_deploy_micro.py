"""The tflite-micro bundle: the array is the model, the resolver has exactly its ops, TFLM runs it in the arena the
settings state, the C++ compiles with a real g++ and the quantization is the model's own."""
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgefit.deploy import tflite_micro
from edgefit.deploy.bundle import BundleInputs, read_manifest
from edgefit.deploy.write import write_bundles
from edgefit.errors import BadInput

GXX = shutil.which("g++")


@pytest.fixture(scope="module")
def bundle(micro_art, tmp_path_factory):
    folder, _ = micro_art
    [b] = write_bundles(folder, "tflite-micro", out=tmp_path_factory.mktemp("deploy"))
    return b, Path(b.directory)


def settings(d: Path) -> dict:
    """The integer constants of model_settings.h."""
    return {k: int(v) for k, v in re.findall(r"constexpr int (\w+) = (-?\d+);", (d / "model_settings.h").read_text())}


def litert_ops(path: Path) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    return {o["op_name"] for o in Interpreter(model_path=str(path))._get_ops_details()}


def test_bundle_files_and_facts(bundle, micro_art):
    b, d = bundle
    assert b.files == ["README.md", "main.cc", "model.tflite", "model_data.cc", "model_data.h", "model_ops.h",
                       "model_settings.h"]
    folder, manifest = micro_art
    art = next(a for a in manifest["artifacts"] if a["precision"] == "int8")
    assert b.artifact == art["file"] and (d / "model.tflite").read_bytes() == (folder / art["file"]).read_bytes()
    s = settings(d)
    assert b.facts["arena_bytes"] == s["kTensorArenaSize"]
    assert b.facts["arena_measured_bytes"] == s["kTensorArenaMeasuredBytes"]
    assert b.facts["ops"] and set(b.facts["ops"]) == litert_ops(d / "model.tflite")
    readme = (d / "README.md").read_text()
    assert b.parity in readme and f"{s['kTensorArenaSize']} bytes" in readme and "edgefit_micros" in readme
    assert all(f"{op} (`{tflite_micro.method(op)}`)" in readme for op in b.facts["ops"])


def test_model_data_array_is_the_model_byte_for_byte(bundle):
    _, d = bundle
    cc = (d / "model_data.cc").read_text()
    body = re.search(r"alignas\(16\) const unsigned char g_model_data\[\] = \{(.*?)\};", cc, re.S).group(1)
    data = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", body))
    blob = (d / "model.tflite").read_bytes()
    assert data == blob
    assert int(re.search(r"g_model_data_len = (\d+);", cc).group(1)) == len(blob)
    h = (d / "model_data.h").read_text()
    assert "extern const unsigned char g_model_data[];" in h and "extern const unsigned int g_model_data_len;" in h


def test_resolver_registers_exactly_the_models_ops(bundle):
    _, d = bundle
    text = (d / "model_ops.h").read_text()
    registered = re.findall(r"resolver\.(Add\w+)\(\) != kTfLiteOk\) return kTfLiteError;  // (\w+)", text)
    ops = litert_ops(d / "model.tflite")  # read independently, by LiteRT's interpreter
    assert {op for _, op in registered} == ops and len(registered) == len(ops)
    assert int(re.search(r"constexpr int kNumberOperators = (\d+);", text).group(1)) == len(ops)
    # the header's spelling (tflite-micro micro_mutable_op_resolver.h) for the ops edgefit's families produce
    header = {"CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "FULLY_CONNECTED": "AddFullyConnected",
              "ADD": "AddAdd", "MUL": "AddMul", "PAD": "AddPad", "MEAN": "AddMean", "RESHAPE": "AddReshape",
              "HARD_SWISH": "AddHardSwish", "RELU6": "AddRelu6", "AVERAGE_POOL_2D": "AddAveragePool2D",
              "SOFTMAX": "AddSoftmax", "QUANTIZE": "AddQuantize", "DEQUANTIZE": "AddDequantize"}
    assert all(m == header[op] for m, op in registered if op in header)


def test_resolver_method_spelling_follows_the_tflm_header():
    # irregular spellings in micro_mutable_op_resolver.h, which TFLM's own generator's CamelCase rule gets wrong
    assert tflite_micro.method("CUMSUM") == "AddCumSum"
    assert tflite_micro.method("PADV2") == "AddPadV2"
    assert tflite_micro.method("BATCH_MATMUL") == "AddBatchMatMul"
    assert tflite_micro.method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"
    assert tflite_micro.method("SPACE_TO_BATCH_ND") == "AddSpaceToBatchNd"
    assert tflite_micro.method("L2_POOL_2D") == "AddL2Pool2D"
    assert "RELU_0_TO_1" not in tflite_micro.TFLM_BUILTINS and "HARD_SWISH" in tflite_micro.TFLM_BUILTINS


TFLM_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    path, size = sys.argv[1], int(sys.argv[2])
    ip = runtime.Interpreter.from_file(path, arena_size=size)
    d = ip.get_input_details(0)
    ip.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
    ip.invoke()
    print(ip.get_output(0).tolist())
""")


def tflm_run(path: Path, size: int) -> subprocess.CompletedProcess:
    """TFLM's Python interpreter with an arena of `size` bytes, in its own process (TFLM may abort)."""
    return subprocess.run([sys.executable, "-c", TFLM_RUN, str(path), str(size)], capture_output=True, text=True,
                          timeout=120)


def test_tflm_runs_the_model_in_exactly_the_stated_arena(bundle):
    _, d = bundle
    s = settings(d)
    size, measured = s["kTensorArenaSize"], s["kTensorArenaMeasuredBytes"]
    assert size % 16 == 0 and measured < size <= 1.25 * measured + 16
    r = tflm_run(d / "model.tflite", size)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(json.loads(r.stdout.splitlines()[-1])[0]) == s["kNumClasses"]
    # the figure is the model's need, not a generous guess: half the measured arena is refused
    assert tflm_run(d / "model.tflite", measured // 2).returncode != 0


@pytest.mark.skipif(GXX is None, reason="g++ is not installed")
def test_cpp_compiles_and_settings_are_the_models_quantization(bundle, micro_art, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    _, d = bundle
    subprocess.run([GXX, "-std=c++17", "-Wall", "-Werror", "-c", str(d / "model_data.cc"), "-o",
                    str(tmp_path / "model_data.o")], check=True, capture_output=True, timeout=300)
    _, manifest = micro_art
    pp = manifest["preprocess"]
    (tmp_path / "probe.cc").write_text(textwrap.dedent(f"""
        #include <cstdio>
        #include "model_settings.h"
        static_assert(kTensorArenaSize % 16 == 0, "16-byte aligned arena");
        static_assert(kTensorArenaSize >= kTensorArenaMeasuredBytes, "margin on top of the measurement");
        static_assert(kNumClasses == {len(manifest["labels"])}, "one label per class");
        static_assert(kInputHeight == kResolution && kInputWidth == kResolution && kInputChannels == 3, "NHWC");
        int main() {{
          std::printf("%.9g %d %.9g %d\\n", kInputScale, kInputZeroPoint, kOutputScale, kOutputZeroPoint);
          for (int i = 0; i < 3; ++i) std::printf("%.9g %.9g\\n", kMean[i], kStd[i]);
          for (const char* label : kLabels) std::printf("%s\\n", label);
        }}
    """))
    exe = tmp_path / "probe"
    subprocess.run([GXX, "-std=c++17", "-Wall", "-Werror", f"-I{d}", str(tmp_path / "probe.cc"), "-o", str(exe)],
                   check=True, capture_output=True, timeout=120)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    in_scale, in_zp, out_scale, out_zp = lines[0].split()
    it = Interpreter(model_path=str(d / "model.tflite"))
    (i_scale, i_zp), (o_scale, o_zp) = it.get_input_details()[0]["quantization"], \
        it.get_output_details()[0]["quantization"]
    assert np.float32(in_scale) == np.float32(i_scale) and int(in_zp) == i_zp
    assert np.float32(out_scale) == np.float32(o_scale) and int(out_zp) == o_zp
    assert it.get_input_details()[0]["dtype"] == np.int8 and it.get_output_details()[0]["dtype"] == np.int8
    mean, std = zip(*(map(float, ln.split()) for ln in lines[1:4]), strict=True)
    assert mean == pytest.approx(pp["mean"], rel=1e-6) and std == pytest.approx(pp["std"], rel=1e-6)
    assert lines[4:] == manifest["labels"]


def with_op_tflm_lacks(src: Path, dst: Path) -> None:
    """`src` with its first operator code turned into RELU_0_TO_1 (a TFLite builtin TFLM has no kernel for)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(src.read_bytes(), 0))
    m.operatorCodes[0].builtinCode = fb.BuiltinOperator.RELU_0_TO_1
    m.operatorCodes[0].deprecatedBuiltinCode = fb.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    dst.write_bytes(b.Output())


def test_a_model_tflm_cannot_run_is_one_line_naming_the_op(micro_art, tmp_path):
    folder, _ = micro_art
    art = tmp_path / "art"
    art.mkdir()
    manifest = read_manifest(folder)
    entry = next(a for a in manifest["artifacts"] if a["precision"] == "int8")
    with_op_tflm_lacks(folder / entry["file"], art / entry["file"])
    out = tmp_path / "bundle"
    out.mkdir()
    with pytest.raises(BadInput) as e:
        tflite_micro.write(BundleInputs(art, manifest, entry, None), out)
    msg = str(e.value)
    assert "RELU_0_TO_1" in msg and "\n" not in msg
    assert list(out.iterdir()) == []  # refused before anything was written


def test_available_here():
    assert tflite_micro.unavailable() is None
