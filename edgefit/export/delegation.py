"""What runs outside a runtime's fast path, read from the runtime itself.

- LiteRT: the interpreter applies XNNPACK at allocation; `_get_ops_details()` then lists the model's nodes
  plus one DELEGATE node per delegated partition. A node is delegated when it lies between a DELEGATE node's
  inputs and outputs; every other node runs on TFLite's own kernels and splits the graph.
- onnxruntime: after its graph optimizations, a QDQ int8 model's quantized nodes are QLinear*/QGemm/
  *Integer kernels; a compute node left between a DequantizeLinear and a QuantizeLinear runs in float
  (a "float island").
"""
from __future__ import annotations

import collections
import tempfile
from pathlib import Path

# Nodes that only move or reshape data (no arithmetic worth a fast path).
_DATA_MOVEMENT = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Shape", "Gather",
                  "Concat", "Slice", "Cast", "QuantizeLinear", "DequantizeLinear"}


def _counts(names) -> list[dict]:
    return [{"op": op, "count": n} for op, n in sorted(collections.Counter(names).items())]


def tflite_undelegated(data: bytes, threads: int = 2) -> list[dict]:
    """[{op, count}] of the TFLite nodes XNNPACK did not take (empty: the whole graph is delegated)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data, num_threads=threads)
    it.allocate_tensors()
    ops = it._get_ops_details()
    nodes = {o["index"]: o for o in ops if o["op_name"] != "DELEGATE"}
    producer = {int(t): i for i, o in nodes.items() for t in o["outputs"]}
    covered: set[int] = set()
    for d in (o for o in ops if o["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:  # walk back from the partition's outputs to its inputs
            t = todo.pop()
            n = producer.get(t)
            if t in boundary or n is None or n in covered:
                continue
            covered.add(n)
            todo.extend(int(x) for x in nodes[n]["inputs"] if x >= 0)
    return _counts(o["op_name"] for i, o in nodes.items() if i not in covered)


def onnx_float_islands(data: bytes) -> list[dict]:
    """[{op, count}] of compute nodes an int8 QDQ model still runs in float after onnxruntime's optimizations."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        src, opt = Path(tmp) / "m.onnx", Path(tmp) / "opt.onnx"
        src.write_bytes(data)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(opt)
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(opt)).graph
    quantized = ("QLinear", "QGemm", "QAttention", "DynamicQuantize")
    return _counts(n.op_type for n in graph.node if n.op_type not in _DATA_MOVEMENT
                   and not n.op_type.startswith(quantized) and not n.op_type.endswith("Integer"))
