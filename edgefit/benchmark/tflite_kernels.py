"""Kernel samples for LiteRT: each kernel of a real TFLite network timed on its own, nn-Meter style.

LiteRT's Python interpreter has no per-op profiler, and XNNPACK runs a delegated graph as one node. So a
network's kernels are cut out of its own flatbuffer: a copy of the model whose subgraph holds only that
kernel's ops, its activation inputs as the model's inputs (weights, quantization and fused activation stay
as converted), is timed with the same interpreter, delegate and threads as the whole network. A PAD that
feeds a convolution is one kernel with it (XNNPACK folds the padding into the convolution; alone it runs
on TFLite's own kernel, several times slower). Shapes are written as kernels.py writes onnxruntime's (NCHW
activations, OIHW weights), so one latency model (latency_model.py) serves both runtimes.
"""
from __future__ import annotations

import statistics

_CONVS = {"CONV_2D", "DEPTHWISE_CONV_2D"}


def _flatbuffers():
    from ..export.tflite_export import import_tensorflow

    import_tensorflow()  # in edgefit's import order (see there)
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils


def _nchw(shape) -> list[int]:
    s = [int(d) for d in shape]
    return [s[0], s[3], s[1], s[2]] if len(s) == 4 else s


def _weight(op: str, shape) -> list[int]:
    """A TFLite filter in ONNX's OIHW: CONV_2D [O, H, W, I]; DEPTHWISE_CONV_2D [1, H, W, C] -> [C, 1, H, W]."""
    s = [int(d) for d in shape]
    if op == "CONV_2D" and len(s) == 4:
        return [s[0], s[3], s[1], s[2]]
    if op == "DEPTHWISE_CONV_2D" and len(s) == 4:
        return [s[3], 1, s[1], s[2]]
    return s


class _Graph:
    """A TFLite model's first subgraph, its kernels (each a list of operator positions) and their records."""

    def __init__(self, blob: bytes):
        self.fb = _flatbuffers()
        self.m = self.fb.read_model_from_bytearray(bytearray(blob))
        self.g = self.m.subgraphs[0]
        self.ops = list(self.g.operators)
        self.names = [self.fb.opcode_to_name(self.m, o.opcodeIndex) for o in self.ops]
        readers: dict[int, list[int]] = {}
        for i, o in enumerate(self.ops):
            for t in o.inputs:
                readers.setdefault(int(t), []).append(i)
        self.kernels, taken = [], set()
        for i, o in enumerate(self.ops):
            if i in taken:
                continue
            nxt = readers.get(int(o.outputs[0]), [])
            if self.names[i] == "PAD" and len(nxt) == 1 and self.names[nxt[0]] in _CONVS:
                self.kernels.append([i, nxt[0]])
                taken.add(nxt[0])
            else:
                self.kernels.append([i])

    def _constant(self, t: int) -> bool:
        data = self.m.buffers[self.g.tensors[t].buffer].data
        return data is not None and len(data) > 0

    def record(self, kernel: list[int]) -> dict:
        """What latency_model.features reads: op, input shapes (activation first, then weight), output."""
        main = self.ops[kernel[-1]]
        op = self.names[kernel[-1]]
        first = self.ops[kernel[0]]
        acts = [int(t) for t in first.inputs if t >= 0 and not self._constant(int(t))]
        consts = [int(t) for t in main.inputs if t >= 0 and self._constant(int(t))]
        inputs = [_nchw(self.g.tensors[t].shape) for t in acts[:1]]
        inputs += [_weight(op, self.g.tensors[t].shape) for t in consts[:1]]
        out = self.g.tensors[int(main.outputs[0])]
        act = getattr(main.builtinOptions, "fusedActivationFunction", 0)
        return {"node": out.name.decode() if isinstance(out.name, bytes) else str(out.name), "op": op,
                "inputs": inputs, "output": _nchw(out.shape), "fused_act": bool(act)}

    def alone(self, kernel: list[int]) -> bytes:
        """The model with only `kernel`'s ops, its activation inputs as inputs and its output as output, and only
        the tensors and buffers those ops use (a kernel file is the size of its own weights, not the network's)."""
        import copy

        import numpy as np

        ops = [self.ops[i] for i in kernel]
        made = {int(t) for o in ops for t in o.outputs}
        ins = list(dict.fromkeys(int(t) for o in ops for t in o.inputs
                                 if t >= 0 and int(t) not in made and not self._constant(int(t))))
        used = sorted({int(t) for o in ops for t in [*o.inputs, *o.outputs] if t >= 0})
        tensor_at = {old: new for new, old in enumerate(used)}
        buffers = [0, *sorted({self.g.tensors[t].buffer for t in used} - {0})]  # buffer 0: the empty sentinel
        buffer_at = {old: new for new, old in enumerate(buffers)}
        tensors = []
        for t in used:
            c = copy.copy(self.g.tensors[t])
            c.buffer = buffer_at[c.buffer]
            tensors.append(c)
        new_ops = []
        for o in ops:
            c = copy.copy(o)
            c.inputs = np.array([tensor_at[int(t)] if t >= 0 else -1 for t in o.inputs], dtype=np.int32)
            c.outputs = np.array([tensor_at[int(t)] for t in o.outputs], dtype=np.int32)
            c.intermediates = None
            new_ops.append(c)
        g, m = self.g, self.m
        saved = g.operators, g.inputs, g.outputs, g.tensors, m.buffers, m.signatureDefs, m.metadata
        g.operators, g.tensors = new_ops, tensors
        g.inputs, g.outputs = [tensor_at[t] for t in ins], [tensor_at[int(ops[-1].outputs[0])]]
        m.buffers, m.signatureDefs, m.metadata = [m.buffers[b] for b in buffers], None, None
        try:
            return bytes(self.fb.convert_object_to_bytearray(self.m))
        finally:
            g.operators, g.inputs, g.outputs, g.tensors, m.buffers, m.signatureDefs, m.metadata = saved


def kernels_of(blob: bytes) -> list[dict]:
    """The kernels of a TFLite model (op and shapes, no times): what a LiteRT latency profile sums over."""
    g = _Graph(blob)
    return [g.record(k) for k in g.kernels]


def _p50_ms(blob: bytes, threads: int, min_seconds: float, feed: bool) -> float:
    """p50 of a model on seeded inputs with the one protocol; `feed`: a whole network's run sets its inputs (as
    bench and probe.py time it), a cut-out kernel's only invokes."""
    from ai_edge_litert.interpreter import Interpreter

    from ..device.probe import TfliteModel
    from ..timing import measure

    return measure(TfliteModel(Interpreter, blob, threads, feed).run, min_runs=20, min_seconds=min_seconds)["p50_ms"]


def network_ms(blob: bytes, threads: int, sessions: int = 3) -> float:
    """The whole network's latency: the median over `sessions` fresh interpreters of each one's p50."""
    return statistics.median(_p50_ms(blob, threads, 0.3, True) for _ in range(sessions))


def profile_network(blob: bytes, threads: int) -> tuple[list[dict], float]:
    """([kernel record with its time "us"], the network's measured ms) of one TFLite network."""
    g = _Graph(blob)
    kernels = [{**g.record(k), "us": _p50_ms(g.alone(k), threads, 0.03, False) * 1000} for k in g.kernels]
    return kernels, network_ms(blob, threads)


def cut_kernels(blob: bytes) -> list[tuple[dict, bytes]]:
    """Each kernel of a TFLite model as (its record, a model holding only it): what a probe folder carries to time
    the kernels on the device."""
    g = _Graph(blob)
    return [(g.record(k), g.alone(k)) for k in g.kernels]
