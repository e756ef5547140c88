"""Per-layer int8 error of an ONNX QDQ artifact, and the fallback that keeps the most sensitive tensors float
(fallback.py's `repair` serves every int8 artifact: ONNX ones come here, TFLite ones go to tflite_layers.py).

Local error: every activation the int8 graph quantizes (each QuantizeLinear's input) is taken from the float
graph it was quantized from (rebuilt from reference.pt exactly as the export prepared it, so tensor names
match) and rounded with the int8 graph's own scale and zero point. That isolates each tensor's rounding and
clipping from the error accumulated upstream. (onnxruntime's `qdq_loss_debug` pre/post pairs are not used:
the quantizer folds Relu/Clip into the QuantizeLinear range, so its "pre" value of a Clip output is the
unclipped tensor.) The accumulated error, the int8 graph's dequantized value against the float graph's at the
same tensor, is reported beside it (`vs_float_db`).

Ranking: the median over channels of the per-channel SQNR (dB). A tensor SQNR understates the classic failure:
one channel with a range 1000x the others sets the per-tensor scale, every other channel rounds to zero, and
the norm, dominated by that one channel, still reads 16 dB (the test's planted layer); the median channel
reads 0 dB, all signal lost.

Fallback: keeping a tensor float means its producer and every consumer run float (a quantized consumer would
quantize the tensor at its input again); `nodes_to_exclude` takes those nodes. The smallest number of
tensors, worst first, whose int8 graph passes the parity floor is kept.
"""
from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FALLBACK_STEPS = (1, 2, 4, 8, 16)  # tensors kept float, tried in turn
LAYER_IMAGES = 16  # images the per-layer errors are measured on


def median_channel_sqnr(pre: np.ndarray, post: np.ndarray) -> float:
    a = pre.astype(np.float64)
    b = post.astype(np.float64)
    if a.ndim >= 2:  # (N, C, ...) -> one row per channel
        a = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
        b = np.moveaxis(b, 1, 0).reshape(b.shape[1], -1)
    else:
        a, b = a.reshape(1, -1), b.reshape(1, -1)
    signal = np.linalg.norm(a, axis=1)
    noise = np.linalg.norm(a - b, axis=1)
    live = signal > 1e-12  # a channel that is zero everywhere carries nothing to lose
    if not live.any():
        return float("inf")
    return float(np.median(20 * np.log10(signal[live] / np.maximum(noise[live], 1e-12))))


def sqnr(a: np.ndarray, b: np.ndarray) -> float:
    noise = float(np.linalg.norm(a.astype(np.float64) - b))
    return float("inf") if noise == 0 else 20 * float(np.log10(max(float(np.linalg.norm(a)), 1e-12) / noise))


def int8_source(art_dir: Path, manifest: dict) -> tuple[object, int]:
    """(the network the int8 artifacts of `art_dir` were quantized from, its resolution): rebuilt from
    reference.pt in the deploy form for the runtime the int8 graph was shaped for."""
    from .. import checkpoint
    from .deploy_form import deploy_form, int8_form_differs

    ck = checkpoint.load(art_dir / manifest.get("reference_checkpoint", "reference.pt"))
    model = deploy_form(checkpoint.build_model(ck))
    int8_for = (manifest.get("int8_graph") or {}).get("for", "litert")
    if int8_form_differs(model, int8_for):
        model = deploy_form(copy.deepcopy(model), int8_for)
    return model, ck["preprocess"]["resolution"]


def float_graph(art_dir: Path, manifest: dict, out: Path) -> Path:
    """The float graph the int8 ONNX artifact was quantized from (same deploy form, same preparation), written
    to `out`."""
    from .onnx_export import prepare_for_int8, to_onnx_bytes

    model, res = int8_source(art_dir, manifest)
    raw = out.with_name("raw_" + out.name)
    raw.write_bytes(to_onnx_bytes(model, res, {}))
    return prepare_for_int8(raw, out)


def _run_exposing(model, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """The values of the tensors `names` of the ONNX `model` (path or ModelProto) on the images `x`, batch-first."""
    import onnx

    from ..runtimes import ort_session
    from .onnx_export import INPUT

    proto = onnx.load(str(model)) if isinstance(model, Path) else copy.deepcopy(model)
    have = {o.name for o in proto.graph.output}
    proto.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                              for n in names if n not in have)
    sess = ort_session(proto.SerializeToString())
    runs = [sess.run(names, {INPUT: x[i:i + 1]}) for i in range(len(x))]
    return {n: np.concatenate([r[j] for r in runs]) for j, n in enumerate(names)}


def _quantized_tensors(int8) -> dict[str, dict]:
    """{float tensor name: {"scale", "zero_point", "axis", "dequantized"}} for every QuantizeLinear of `int8`."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in int8.graph.initializer}
    dq_of = {n.input[0]: n.output[0] for n in int8.graph.node if n.op_type == "DequantizeLinear"}
    out = {}
    for n in int8.graph.node:
        if n.op_type != "QuantizeLinear" or n.input[1] not in inits or n.output[0] not in dq_of:
            continue
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        out[n.input[0]] = {"scale": inits[n.input[1]], "zero_point": inits[n.input[2]], "axis": axis,
                           "dequantized": dq_of[n.output[0]]}
    return out


def _fake_quant(x: np.ndarray, q: dict) -> np.ndarray:
    zp = q["zero_point"]
    info = np.iinfo(zp.dtype)
    shape = [1] * x.ndim
    if np.ndim(q["scale"]) and x.ndim > 1:
        shape[q["axis"]] = -1
    s, z = np.reshape(q["scale"], shape).astype(np.float64), np.reshape(zp, shape).astype(np.float64)
    return (np.clip(np.round(x / s) + z, info.min, info.max) - z) * s


def _graph_links(pre: Path) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """{tensor: (producing node name, op type)}, {tensor: [consuming node names]} of the float graph."""
    import onnx

    producer, consumers = {}, {}
    for n in onnx.load(str(pre)).graph.node:
        for o in n.output:
            producer[o] = (n.name, n.op_type)
        for i in n.input:
            consumers.setdefault(i, []).append(n.name)
    return producer, consumers


def layer_errors(int8_path: Path, pre: Path, x: np.ndarray) -> list[dict]:
    """Every quantized activation of the int8 graph at `int8_path`, measured on the images `x` against `pre` (its
    float graph), worst (lowest median channel SQNR) first."""
    import onnx

    int8 = onnx.load(str(int8_path))
    producer, _ = _graph_links(pre)
    quantized = {t: q for t, q in _quantized_tensors(int8).items() if t in producer}  # not the graph input
    names = list(quantized)
    floats = _run_exposing(pre, names, x)
    deq = _run_exposing(int8, [quantized[t]["dequantized"] for t in names], x)
    rows = []
    for t in names:
        f, q = floats[t], quantized[t]
        local = _fake_quant(f, q)
        node, op = producer[t]
        rows.append({"tensor": t, "node": node, "op_type": op,
                     "channel_sqnr_db": round(median_channel_sqnr(f, local), 2),
                     "tensor_sqnr_db": round(sqnr(f, local), 2),
                     "vs_float_db": round(sqnr(f, deq[q["dequantized"]]), 2)})
    return sorted(rows, key=lambda r: r["channel_sqnr_db"])


def nodes_keeping_float(tensors: list[str], readers: dict[str, list[str]], node_of=lambda t: t) -> list[str]:
    """The nodes that must run float for `tensors` to stay float: each tensor's producer (`node_of`) and every
    node that reads it (`readers`), or a quantized reader would quantize the tensor again at its input."""
    nodes: list[str] = []
    for t in tensors:
        for n in [node_of(t), *readers.get(t, [])]:
            if n not in nodes:
                nodes.append(n)
    return nodes


@dataclass(frozen=True)
class Fallback:
    """The int8 graph with the `tensors` (worst first) kept float, and whether it passed the parity floor."""

    model: object  # onnx.ModelProto (ONNX) or bytes (TFLite); None when no step was tried
    tensors: list[str]
    nodes: list[str]
    agreement: float
    passed: bool
    tried: list[dict]  # {"tensors": k, "agreement": a} per step

    def to_dict(self) -> dict:
        return {"float_tensors": self.tensors, "float_nodes": self.nodes, "agreement": round(self.agreement, 4),
                "passed": self.passed, "tried": self.tried}


def smallest_fallback(ranked: list[dict], nodes_for, quantize, agreement_of, min_agreement: float) -> Fallback:
    """Keep the k worst tensors of `ranked` float, k in FALLBACK_STEPS, until the model's top-1 agreement with the
    reference reaches `min_agreement`; the last model tried is returned if none does. The runtime's part:
    `nodes_for(tensors)` -> nodes to keep float, `quantize(nodes)` -> model, `agreement_of(model)` -> agreement."""
    tried, last = [], None
    for k in FALLBACK_STEPS:
        if k > len(ranked) or (tried and tried[-1]["tensors"] >= len(ranked)):
            break
        tensors = [r["tensor"] for r in ranked[:k]]
        nodes = nodes_for(tensors)
        model = quantize(nodes)
        agreement = agreement_of(model)
        tried.append({"tensors": k, "agreement": round(agreement, 4)})
        last = Fallback(model, tensors, nodes, agreement, agreement >= min_agreement, tried)
        if last.passed:
            return last
    return last or Fallback(None, [], [], 0.0, False, tried)


def fallback(ranked: list[dict], pre: Path, calib: np.ndarray, x: np.ndarray, ref_top1: np.ndarray,
             min_agreement: float) -> Fallback:
    """Requantize `pre` (onnxruntime's `nodes_to_exclude`) with the smallest number of worst tensors float whose
    top-1 agreement with the reference on `x` reaches `min_agreement`."""
    from ..runtimes import ort_session
    from .onnx_export import INPUT, quantize_prepared

    producer, consumers = _graph_links(pre)

    def agreement_of(proto) -> float:
        sess = ort_session(proto.SerializeToString())
        y = np.concatenate([sess.run(None, {INPUT: x[i:i + 1]})[0] for i in range(len(x))])  # batch 1 graph
        return float((y.argmax(1) == ref_top1).mean())

    return smallest_fallback(ranked, lambda ts: nodes_keeping_float(ts, consumers, lambda t: producer[t][0]),
                             lambda nodes: quantize_prepared(pre, calib, nodes), agreement_of, min_agreement)


def p50_ms(blob: bytes, fmt: str, x: np.ndarray) -> float:
    from ..runtimes import one_run
    from ..timing import measure

    return measure(one_run(blob, fmt, x), min_runs=30, min_seconds=0.5)["p50_ms"]


def onnx_fallback(art_dir: Path, manifest: dict, calib: np.ndarray, path: Path, xs: np.ndarray,
                   ref_top1: np.ndarray, min_agreement: float) -> tuple[Fallback, list[dict], bytes | None]:
    import onnx

    from .onnx_export import set_metadata

    with tempfile.TemporaryDirectory() as tmp:
        pre = float_graph(art_dir, manifest, Path(tmp) / "pre.onnx")
        ranked = layer_errors(path, pre, xs[:LAYER_IMAGES])
        fb = fallback(ranked, pre, calib, xs, ref_top1, min_agreement)
    if not fb.passed:
        return fb, ranked, None
    set_metadata(fb.model, {m.key: m.value for m in onnx.load(str(path)).metadata_props})
    return fb, ranked, fb.model.SerializeToString()
