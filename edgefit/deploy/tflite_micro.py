"""The `tflite-micro` bundle: C++ for TensorFlow Lite Micro (TFLM).

    model.tflite                      the verified int8 artifact (int8 input/output, the TFLM graph)
    model_data.cc / model_data.h      it as a 16-byte aligned array (TFLM's tools/generate_cc_arrays.py style)
    model_ops.h                       RegisterOps: a MicroMutableOpResolver with exactly the model's operators
    model_settings.h                  kTensorArenaSize (measured in TFLM, plus MARGIN), input/output quantization,
                                      preprocessing, labels
    main.cc                           one inference on a grey image: top label and time (edgefit_micros hook)

The writer runs the model in TFLM's own interpreter first (edgefit.tflm.measure_arena): a model TFLM cannot run
is refused with the ops it lacks, before anything is written. Op names map to resolver methods by `method`, checked
against tensorflow/lite/micro/micro_mutable_op_resolver.h (tflite-micro 90b983c, 2026-08-20: all 100 builtins).
"""
from __future__ import annotations

import math
import shutil
import string
import textwrap
from pathlib import Path

from ..errors import BadInput
from ..tflm import Arena, available, measure_arena
from .bundle import BundleInputs, Written

# Every builtin op micro_mutable_op_resolver.h has an Add method for (tflite-micro 90b983c). The method is the op
# name in CamelCase (CONV_2D -> AddConv2D), as TFLM's tools/gen_micro_mutable_op_resolver spells it, except
# SPELLING's four, which the header spells differently.
TFLM_BUILTINS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND BROADCAST_ARGS
BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV
DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER
GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND
LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD
PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_ALL REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH
SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split())
SPELLING = {"BATCH_MATMUL": "AddBatchMatMul", "CUMSUM": "AddCumSum", "PADV2": "AddPadV2",
            "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM"}

# kTensorArenaSize = the arena TFLM's Python interpreter measured (edgefit.tflm: x86-64, reference kernels) times
# 1 + MARGIN, rounded up to 16 bytes. On the host that figure is exact: for one export of each of the 8 zoo families
# it allocates and invokes, 16 bytes less fails. A device differs: a 32-bit MCU's structs are smaller, optimized
# kernels request scratch buffers of their own, and arena_used_bytes() can miss Prepare-time temporaries
# (tflite-micro #890, #2738). Measured (2026-12, same 8 exports, TFLM 90b983c built from source, smallest arena that
# runs): x86-64 99.8-99.97% of the figure; 32-bit reference kernels 95.7-99.2%; 32-bit CMSIS-NN with the scratch
# sizes of its plain C, DSP (Cortex-M4/M7) and Helium (M55/M85) kernels up to 99.9%. So the figure already covers
# those; MARGIN is for what was not measured (ESP-NN, Xtensa, other TFLM versions), well under the 25% cap.
MARGIN = 0.10
MARGIN_WHY = ("the figure comes from a 64-bit host; a 32-bit MCU stores smaller structs, but optimized kernels "
              "request scratch buffers of their own and arena_used_bytes() can miss Prepare-time temporaries "
              "(tflite-micro #890, #2738). For edgefit's 8 zoo families, TFLM built for 32-bit with its reference "
              "kernels and with CMSIS-NN (plain C, DSP and Helium scratch sizes) needed 95.7-99.9% of the measured "
              "figure; the margin covers kernels not measured (ESP-NN, Xtensa) and other TFLM versions.")
ALIGN = 16

TEMPLATES = Path(__file__).parent / "micro_templates"


def unavailable() -> str | None:
    """Why this target cannot be written on this machine (None: it can)."""
    if not available():
        return "the tflite-micro package is not installed (pip install tflite-micro); it measures the arena"
    return None


def method(op: str) -> str:
    """The MicroMutableOpResolver method that registers builtin `op` (CONV_2D -> AddConv2D)."""
    return SPELLING.get(op) or "Add" + "".join(p[:1] + (p[1:].lower() if p[:1].isalpha() else p[1:])
                                               for p in op.split("_"))


def read_model(blob: bytes) -> dict:
    """What the C++ needs from a .tflite flatbuffer: its operators (in first use order; a custom op by its custom
    code) and the input/output tensors (shape, TFLite type name, scale, zero point)."""
    from ai_edge_litert import schema_py_generated as fb

    m = fb.Model.GetRootAs(blob, 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    codes = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())  # as TFLM reads it (schema_utils GetBuiltinCode)
        codes.append(oc.CustomCode().decode() if code == fb.BuiltinOperator.CUSTOM else names.get(code, str(code)))
    ops: list[str] = []
    for s in range(m.SubgraphsLength()):
        g = m.Subgraphs(s)
        ops += [codes[g.Operators(i).OpcodeIndex()] for i in range(g.OperatorsLength())]
    g = m.Subgraphs(0)

    def tensor(index: int) -> dict:
        t = g.Tensors(index)
        q = t.Quantization()
        scale = [float(x) for x in q.ScaleAsNumpy()] if q is not None and q.ScaleLength() else []
        zp = [int(x) for x in q.ZeroPointAsNumpy()] if q is not None and q.ZeroPointLength() else []
        return {"shape": [int(d) for d in t.ShapeAsNumpy()], "type": types.get(t.Type(), str(t.Type())),
                "scale": scale[0] if len(scale) == 1 else None, "zero_point": zp[0] if len(zp) == 1 else None}

    return {"ops": list(dict.fromkeys(ops)), "inputs": [tensor(g.Inputs(i)) for i in range(g.InputsLength())],
            "outputs": [tensor(g.Outputs(i)) for i in range(g.OutputsLength())]}


def arena_size(measured: int) -> int:
    """kTensorArenaSize for a measured arena: MARGIN on top, rounded up to 16-byte alignment."""
    return ALIGN * math.ceil(measured * (1 + MARGIN) / ALIGN)


def check(path: Path, model: dict) -> Arena:
    """TFLM runs `path` (its arena measured), every op has a resolver method and the I/O is one int8 image in and
    one int8 vector out; else BadInput naming what is wrong."""
    arena = measure_arena(path)
    if not arena.ok:
        why = f"it has no kernel for {', '.join(arena.missing_ops)}" if arena.missing_ops else arena.error
        raise BadInput(f"TensorFlow Lite Micro cannot run {path.name}: {why}; export a network from edgefit's zoo "
                       "(every family runs in TFLM) or choose another --target")
    lacking = [op for op in model["ops"] if op not in TFLM_BUILTINS]
    if lacking:
        raise BadInput(f"{path.name} has ops TFLM's MicroMutableOpResolver has no method for: {', '.join(lacking)}; "
                       "export a variant without them or register them yourself")
    ins, outs = model["inputs"], model["outputs"]
    if (len(ins), len(outs)) != (1, 1) or ins[0]["type"] != "INT8" or outs[0]["type"] != "INT8" \
            or len(ins[0]["shape"]) != 4 or ins[0]["scale"] is None or outs[0]["scale"] is None:
        raise BadInput(f"{path.name} is not one int8 NHWC image in and one int8 vector out (per-tensor quantized); "
                       "export with --target tflite-micro (--io int8 --int8-for tflite-micro)")
    return arena


def c_string(s: str) -> str:
    """`s` as a C++ string literal (UTF-8 kept; quotes, backslashes and control characters escaped)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def c_float(x: float) -> str:
    return f"{float(x)!r}f"  # the shortest repr that reads back as the same double, so as the same float too


def model_data(blob: bytes) -> tuple[str, str]:
    """model_data.h and model_data.cc: the flatbuffer as `alignas(16) const unsigned char g_model_data[]`."""
    header = ("// model.tflite as a C array, written by edgefit (as TFLM's tools/generate_cc_arrays.py writes one).\n"
              "#ifndef EDGEFIT_MODEL_DATA_H_\n#define EDGEFIT_MODEL_DATA_H_\n\n"
              "extern const unsigned char g_model_data[];\nextern const unsigned int g_model_data_len;\n\n"
              "#endif  // EDGEFIT_MODEL_DATA_H_\n")
    rows = (", ".join(f"0x{b:02x}" for b in blob[i:i + 12]) for i in range(0, len(blob), 12))
    cc = ('// model.tflite, written by edgefit. 16-byte aligned: TFLM reads the flatbuffer in place.\n'
          '#include "model_data.h"\n\n'
          "alignas(16) const unsigned char g_model_data[] = {\n  " + ",\n  ".join(rows) + "\n};\n"
          f"const unsigned int g_model_data_len = {len(blob)};\n")
    return header, cc


def model_ops(ops: list[str]) -> str:
    lines = "".join(f"  if (resolver.{method(op)}() != kTfLiteOk) return kTfLiteError;  // {op}\n" for op in ops)
    return ("// The operators of model.tflite, read from its flatbuffer by edgefit: exactly these are linked in.\n"
            "#ifndef EDGEFIT_MODEL_OPS_H_\n#define EDGEFIT_MODEL_OPS_H_\n\n"
            '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
            f"constexpr int kNumberOperators = {len(ops)};\n\n"
            "inline TfLiteStatus RegisterOps(tflite::MicroMutableOpResolver<kNumberOperators>& resolver) {\n"
            f"{lines}  return kTfLiteOk;\n}}\n\n#endif  // EDGEFIT_MODEL_OPS_H_\n")


def model_settings(inp: BundleInputs, model: dict, arena: Arena, size: int) -> str:
    i, o = model["inputs"][0], model["outputs"][0]
    _, h, w, c = i["shape"]
    pp = inp.preprocess
    labels = inp.labels
    lab = ",\n    ".join(c_string(s) for s in labels)
    why = textwrap.fill(f"The tensor arena: {arena.total_bytes} bytes measured in TensorFlow Lite Micro's own "
                        f"interpreter (edgefit, x86-64 host, reference kernels: {arena.head_bytes} activations + "
                        f"{arena.tail_bytes} persistent) plus a {MARGIN:.0%} margin, rounded up to 16 bytes. Why a "
                        f"margin: {MARGIN_WHY}", width=116, initial_indent="// ", subsequent_indent="// ",
                        break_on_hyphens=False)
    return f"""\
// What the C++ needs to know about model.tflite ({inp.variant}), written by edgefit.
#ifndef EDGEFIT_MODEL_SETTINGS_H_
#define EDGEFIT_MODEL_SETTINGS_H_

{why}
constexpr int kTensorArenaMeasuredBytes = {arena.total_bytes};
constexpr int kTensorArenaSize = {size};

// Input: one int8 image, NHWC (batch 1, height, width, channels), RGB.
constexpr int kInputHeight = {h};
constexpr int kInputWidth = {w};
constexpr int kInputChannels = {c};
constexpr float kInputScale = {c_float(i["scale"])};
constexpr int kInputZeroPoint = {i["zero_point"]};
// Output: {o["shape"][-1]} int8 class scores (logits); real value = (q - kOutputZeroPoint) * kOutputScale.
constexpr float kOutputScale = {c_float(o["scale"])};
constexpr int kOutputZeroPoint = {o["zero_point"]};

// Preprocessing (edgefit's, as in training): RGB scaled to [0, 1]; resize the shorter side to {pp["resize"]} px
// ({pp["interpolation"]}), center crop {pp["resolution"]} x {pp["resolution"]}; then per channel (x - mean) / std,
// then q = round(x / kInputScale) + kInputZeroPoint, clamped to [-128, 127].
constexpr int kResolution = {pp["resolution"]};
constexpr int kResizeShorter = {pp["resize"]};
constexpr float kMean[{len(pp["mean"])}] = {{{", ".join(c_float(x) for x in pp["mean"])}}};
constexpr float kStd[{len(pp["std"])}] = {{{", ".join(c_float(x) for x in pp["std"])}}};

constexpr int kNumClasses = {len(labels)};
constexpr const char* kLabels[kNumClasses] = {{
    {lab}}};

#endif  // EDGEFIT_MODEL_SETTINGS_H_
"""


def readme(inp: BundleInputs, model: dict, arena: Arena, size: int) -> str:
    ops = ", ".join(f"{op} (`{method(op)}`)" for op in model["ops"])
    return string.Template((TEMPLATES / "README.md").read_text()).substitute(
        variant=inp.variant, file=inp.artifact["file"], measured=arena.total_bytes, head=arena.head_bytes,
        tail=arena.tail_bytes, margin=f"{MARGIN:.0%}", margin_why=MARGIN_WHY, size=size,
        size_kb=f"{size / 1024:,.1f}", parity=inp.parity_line(), n_ops=len(model["ops"]), ops=ops)


def write(inp: BundleInputs, folder: Path) -> Written:
    path = inp.artifact_path
    blob = path.read_bytes()
    model = read_model(blob)
    arena = check(path, model)
    if model["outputs"][0]["shape"][-1] != len(inp.labels):
        raise BadInput(f"{path.name} outputs {model['outputs'][0]['shape'][-1]} classes but the export has "
                       f"{len(inp.labels)} labels; export again")
    size = arena_size(arena.total_bytes)
    (folder / "model.tflite").write_bytes(blob)
    header, cc = model_data(blob)
    (folder / "model_data.h").write_text(header)
    (folder / "model_data.cc").write_text(cc)
    (folder / "model_ops.h").write_text(model_ops(model["ops"]))
    (folder / "model_settings.h").write_text(model_settings(inp, model, arena, size))
    shutil.copyfile(TEMPLATES / "main.cc", folder / "main.cc")
    (folder / "README.md").write_text(readme(inp, model, arena, size))
    notes = [f"{arena.note()}; kTensorArenaSize {size:,} bytes with a {MARGIN:.0%} margin for the device's kernels "
             "(see model_settings.h)",
             f"{len(model['ops'])} ops registered: {', '.join(model['ops'])}"]
    return Written(notes=notes, facts={"arena_bytes": size, "arena_measured_bytes": arena.total_bytes,
                                       "margin": MARGIN, "ops": list(model["ops"])})
