"""Per-layer int8 error of a TFLite artifact, and the fallback that keeps its most sensitive layers float, through
LiteRT's own quantization debugger (`tf.lite.experimental.QuantizationDebugger`).

The int8 TFLite is quantized by the TFLite converter from the SavedModel onnx2tf writes. The debugger redoes that
quantization from the same SavedModel and calibration images (its plain quantized model is checked against the
artifact: `requantized_agreement`), with a NumericVerify op after every quantized op: that op's float twin runs
on the same dequantized inputs, so each layer's error is its own rounding and clipping, apart from the error
accumulated upstream. Ranking: the median over channels of the per-channel SQNR (dB), as for ONNX
(int8_layers.py says why a tensor SQNR understates a one-channel outlier).

Fallback: the converter's denylist (`denylisted_nodes`, by output tensor name) keeps a layer float; its consumers
are denylisted too, or they would quantize the layer's float output again at their inputs with the same range.
The smallest number of layers, worst first, whose model passes the parity floor is kept.
"""
from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np

from .int8_layers import (
    LAYER_IMAGES,
    Fallback,
    int8_source,
    median_channel_sqnr,
    nodes_keeping_float,
    smallest_fallback,
    sqnr,
)
from .tflite_export import quiet_fds


def _channel_sqnr(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> float:
    deq = (q.astype(np.float64) - zero_point) * scale
    return median_channel_sqnr(np.moveaxis(f, -1, 1), np.moveaxis(deq, -1, 1))  # NHWC -> channels on axis 1


def _tensor_sqnr(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> float:
    return sqnr(f, (q.astype(np.float64) - zero_point) * scale)


class Debugger:
    """LiteRT's quantization debugger over the SavedModel of an export directory's int8 graph."""

    def __init__(self, art_dir: Path, manifest: dict, calib: np.ndarray, x: np.ndarray, workdir: Path,
                 denylist: list[str] | tuple = ()):
        from .onnx_export import to_onnx_bytes
        from .tflite_export import import_tensorflow, nhwc, saved_model

        model, res = int8_source(art_dir, manifest)
        src = workdir / "int8" / "model.onnx"  # onnx2tf names its outputs after the input file
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(to_onnx_bytes(model, res, {}))
        saved = saved_model(src, workdir / "tf", calib)
        tf = import_tensorflow()
        self.tf = tf
        calib_nhwc, x_nhwc = nhwc(calib), nhwc(x)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # as onnx2tf's int8 conversion sets it up
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([calib_nhwc[i:i + 1]] for i in range(len(calib_nhwc)))
        with quiet_fds():
            self.dbg = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=lambda: ([x_nhwc[i:i + 1]] for i in range(len(x_nhwc))),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(layer_direct_compare_metrics={
                    "channel_sqnr_db": _channel_sqnr, "tensor_sqnr_db": _tensor_sqnr},
                    denylisted_nodes=list(denylist)))

    def layer_errors(self) -> list[dict]:
        """Every quantized op's output, worst (lowest median channel SQNR) first. A layer fed by a broken one can
        read as badly (its output range was calibrated on healthy inputs); among equals the upstream one is first."""
        with quiet_fds():
            self.dbg.run()
        buf = io.StringIO()
        self.dbg.layer_statistics_dump(buf)  # one row per op: op_name, tensor_name, the metrics
        buf.seek(0)
        rows = [{"tensor": r["tensor_name"], "node": r["tensor_name"], "op_type": r["op_name"],
                 "channel_sqnr_db": round(float(r["channel_sqnr_db"]), 2),
                 "tensor_sqnr_db": round(float(r["tensor_sqnr_db"]), 2)} for r in csv.DictReader(buf)]
        return sorted(rows, key=lambda r: r["channel_sqnr_db"])  # stable: equal errors stay in graph order

    def quantized(self, denylist: list[str] | tuple = ()) -> bytes:
        """The int8 model with the ops writing the tensors `denylist` kept float."""
        with quiet_fds():  # setting the options requantizes the debug model too
            self.dbg.options = self.tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(denylist))
            return self.dbg.get_nondebug_quantized_model()


def readers(it) -> dict[str, list[str]]:
    """{tensor name: [output tensor names of the ops that read it]} of a LiteRT interpreter's model."""
    name = {t["index"]: t["name"] for t in it.get_tensor_details()}
    out: dict[str, list[str]] = {}
    for op in it._get_ops_details():
        for i in op["inputs"]:
            if i >= 0:
                out.setdefault(name[int(i)], []).extend(name[int(o)] for o in op["outputs"] if o >= 0)
    return out


def consumers(blob: bytes) -> dict[str, list[str]]:
    """readers() of a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    return readers(Interpreter(model_content=blob))


def agreement(blob: bytes, x: np.ndarray, ref_top1: np.ndarray) -> float:
    from ..runtimes import TfliteRunner

    return float((TfliteRunner(blob)(x).argmax(1) == ref_top1).mean())


def fallback(dbg: Debugger, ranked: list[dict], x: np.ndarray, ref_top1: np.ndarray, min_agreement: float) -> Fallback:
    """The int8 model (the converter's denylist) with the smallest number of worst layers float whose top-1
    agreement with the reference on `x` reaches `min_agreement`."""
    reads = consumers(dbg.quantized())
    return smallest_fallback(ranked, lambda ts: nodes_keeping_float(ts, reads), dbg.quantized,
                             lambda blob: agreement(blob, x, ref_top1), min_agreement)


def layers(art_dir: Path, manifest: dict, path: Path, calib: np.ndarray, x: np.ndarray, ref_top1: np.ndarray) -> dict:
    """`verify --layers` for an int8 TFLite artifact: the ranked layers (those a float fallback kept float are
    kept float here too, and have no row), and how closely the debugger's own quantization reproduces the artifact
    (top-1 agreement with the reference, both)."""
    art = next(a for a in manifest["artifacts"] if a["file"] == path.name)
    fb = art.get("float_fallback") or {}
    kept = fb.get("float_nodes", []) if fb.get("passed") else []
    with tempfile.TemporaryDirectory() as tmp:
        dbg = Debugger(art_dir, manifest, calib, x[:LAYER_IMAGES], Path(tmp), kept)
        ranked = dbg.layer_errors()
        return {"layers": ranked, "requantized_agreement": round(agreement(dbg.quantized(kept), x, ref_top1), 4),
                "artifact_agreement": round(agreement(path.read_bytes(), x, ref_top1), 4)}


def repair(art_dir: Path, manifest: dict, calib: np.ndarray, xs: np.ndarray, ref_top1: np.ndarray,
           min_agreement: float) -> tuple[Fallback, list[dict], bytes | None]:
    """(the fallback, the ranked layers, the new model when it passed) for the int8 TFLite artifact of `art_dir`
    that missed `min_agreement`."""
    with tempfile.TemporaryDirectory() as tmp:
        dbg = Debugger(art_dir, manifest, calib, xs[:LAYER_IMAGES], Path(tmp))
        ranked = dbg.layer_errors()
        fb = fallback(dbg, ranked, xs, ref_top1, min_agreement)
        return fb, ranked, fb.model if fb.passed else None
