"""Where a failing float artifact first departs from the network it was exported from.

Both formats are compared with a fresh ONNX export of the reference network in the deploy form export wrote
(the same graph, node for node, that the artifact was made from), with every intermediate tensor exposed:
- an ONNX artifact has the same node and tensor names: the first node in graph order whose output differs;
- a TFLite artifact (onnx2tf) has other tensor names, NHWC layouts and fused ops, so its tensors are mapped
  back to the ONNX graph by value: each ONNX tensor is paired with the TFLite op output of the same shape
  (NCHW read as NHWC) that is closest to it. An ONNX tensor with no close TFLite twin is either fused away
  (a convolution's output before its fused activation: something downstream of it still matches) or where
  the conversion went wrong (nothing downstream matches any more). The first of the latter, in graph order,
  is the first diverging layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def reference_graph(model, resolution: int):
    """The ONNX graph of the reference network as export wrote its float artifacts (deploy form)."""
    import copy

    import onnx

    from .deploy_form import deploy_form
    from .onnx_export import to_onnx_bytes

    return onnx.load_from_string(to_onnx_bytes(deploy_form(copy.deepcopy(model)), resolution, {}))


def _all_outputs(proto):
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    have = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for o in node.output:
            if o and o not in have:
                m.graph.output.append(onnx.ValueInfoProto(name=o))
                have.add(o)
    return m


def _values(proto, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the ONNX graph `proto` on the NCHW images `x`, by name."""
    from ..runtimes import ort_session
    from .onnx_export import INPUT

    sess = ort_session(_all_outputs(proto).SerializeToString(), optimize=False)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {INPUT: x}), strict=True))


def _rel_error(ref: np.ndarray, other: np.ndarray) -> float:
    a, b = ref.astype(np.float64), other.astype(np.float64)
    return float(np.abs(a - b).max()) / (float(np.abs(a).max()) or 1.0)


def onnx_first_divergence(artifact: Path, model, x: np.ndarray, resolution: int, tol: float) -> dict | None:
    """The first node (graph order) of a float ONNX artifact whose output differs from the reference export."""
    import onnx

    suspect = onnx.load(str(artifact))
    ref_vals, sus_vals = _values(reference_graph(model, resolution), x), _values(suspect, x)
    for node in suspect.graph.node:
        for o in node.output:
            if o in ref_vals and o in sus_vals and ref_vals[o].shape == sus_vals[o].shape:
                err = _rel_error(ref_vals[o], sus_vals[o])
                if err > tol:
                    return {"node": node.name or o, "op_type": node.op_type, "output": o, "max_rel_error": err}
    return None


def _tflite_outputs(artifact: Path, x: np.ndarray, layout: str | None) -> tuple[dict, dict]:
    """({tensor name: value} of every op output of a float TFLite artifact on the NCHW images `x` (one image),
    {tensor name: names of the outputs of the ops that read it})."""
    import warnings

    from ..runtimes import TfliteRunner
    from .tflite_layers import readers

    with warnings.catch_warnings():  # "intended for debugging purposes only": that is what this is
        warnings.simplefilter("ignore", UserWarning)
        r = TfliteRunner(artifact, preserve_all_tensors=True, layout=layout)
    r(x)
    names = {d["index"]: d["name"] for d in r.it.get_tensor_details()}
    outs = {i for op in r.it._get_ops_details() for i in op["outputs"] if i >= 0}
    return {names[i]: np.asarray(r.it.get_tensor(i)).squeeze() for i in sorted(outs)}, readers(r.it)


def _as_tflite(v: np.ndarray) -> np.ndarray:
    """An ONNX tensor in the layout onnx2tf gives it (NCHW -> NHWC), without unit dimensions."""
    return (v.transpose(0, 2, 3, 1) if v.ndim == 4 else v).squeeze()


def _twin_downstream(o: str, sources: list[str], readers: dict, closest, hops: int = 3) -> tuple[float, str | None]:
    """The TFLite twin of a diverged ONNX tensor `o`: what the ops reading the twins of its matched inputs
    compute (through up to `hops` ops, for the PAD or RESHAPE onnx2tf puts in between), nearest first."""
    level = sources
    for _ in range(hops):
        level = [t for s in level for t in readers.get(s, [])]
        err, twin = closest(o, level)
        if twin is not None:
            return err, twin
    return float("inf"), None


def tflite_first_divergence(artifact: Path, model, x: np.ndarray, resolution: int, tol: float,
                            layout: str | None = "NHWC") -> dict | None:
    """The first layer (ONNX graph order) of a float TFLite artifact that the conversion got wrong, with the
    TFLite tensor it was mapped to; None when every layer's output is found in the artifact."""
    reference = reference_graph(model, resolution)
    ref_vals = _values(reference, x[:1])
    tfl, readers = _tflite_outputs(artifact, x[:1], layout)
    by_shape: dict[tuple, list[str]] = {}
    for name, v in tfl.items():
        if v.dtype.kind == "f":
            by_shape.setdefault(v.shape, []).append(name)
    nodes = [n for n in reference.graph.node if n.op_type != "Constant"]
    wanted = {o: _as_tflite(ref_vals[o]) for n in nodes for o in n.output
              if o in ref_vals and ref_vals[o].dtype.kind == "f" and ref_vals[o].size > 1}

    def closest(o: str, among) -> tuple[float, str | None]:
        errors = [(_rel_error(wanted[o], tfl[t]), t) for t in among if tfl[t].shape == wanted[o].shape]
        return min(errors) if errors else (float("inf"), None)

    best = {o: closest(o, by_shape.get(v.shape, [])) for o, v in wanted.items()}  # its closest TFLite twin
    matched = {o for o, (err, _) in best.items() if err <= tol}
    matched_below: dict[str, bool] = {}  # whether any tensor computed from this one is matched
    for node in reversed(nodes):
        below = any(o in matched or matched_below.get(o, False) for o in node.output)
        for i in node.input:
            matched_below[i] = matched_below.get(i, False) or below
    for node in nodes:
        for o in node.output:
            if o in best and o not in matched and not matched_below.get(o, False):
                inputs = [(i, best[i][1]) for i in node.input if i in matched]
                err, twin = _twin_downstream(o, [t for _, t in inputs], readers, closest)
                return {"node": node.name or o, "op_type": node.op_type, "output": o,
                        "max_rel_error": err if twin else None, "tflite_tensor": twin,
                        "inputs_matched": [{"onnx": i, "tflite": t} for i, t in inputs],
                        "mapped": f"{len(matched)} of {len(best)} ONNX tensors found in the TFLite graph"}
    return None
