"""Measure a real network: MACs, parameters, weighted-layer statistics and peak activation memory.

Everything here runs on the `meta` device (shapes only, no arithmetic), so a whole zoo is measured
in seconds. torch is imported by whoever calls this module, never at edgefit import time.

Peak activation memory comes from tensor liveness in the traced aten graph: a tensor is alive from
the op that creates it to the last op that reads it (residual branches stay alive until their add).
Views and in-place ops alias their input. As deployed runtimes fuse batch norm and activations into
the producing convolution, a unary elementwise op whose input has no later reader reuses its input's
buffer. Weights and buffers are not activations and are not counted.

The graph is the one TFLite deploys (what a microcontroller's planner sees, checked against TensorFlow
Lite Micro's arena by bench/ram_truth.py): a strided convolution whose symmetric PyTorch padding differs
from TF's SAME padding (e.g. stride 2, 3x3, even input: PyTorch pads 1/1, SAME pads 0/1) is exported as an
explicit PAD, a full padded copy of its input, before a VALID convolution; an explicit `constant_pad_nd`
in front of a convolution (the TF-ported timm networks) is folded into a SAME convolution and costs nothing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

_FUSABLE = {
    "_native_batch_norm_legit_no_training", "native_batch_norm", "batch_norm", "relu", "relu_", "relu6",
    "hardtanh", "hardtanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "sigmoid", "silu",
    "silu_", "gelu", "clamp", "clamp_", "clone", "dropout", "_to_copy",
}


@dataclass(frozen=True)
class NetStats:
    macs: int
    params: int
    weight_elems: int  # elements of conv / linear weights (batch norm folds into them)
    out_channels: int  # sum of output channels of conv / linear layers (one bias + quant params each)
    weighted_layers: int
    ops: int  # aten ops after fusion, a proxy for the deployed graph's operator count
    peak_act_elems: int
    input_elems: int
    output_elems: int
    macs_by_class: dict = None  # standard / depthwise / pointwise conv and dense MACs (see op_class)
    # The int8 graph for LiteRT writes hard-swish as three ops (export/deploy_form.py): its peak activations
    # and op count, when they differ from the graph above ({"peak_act_elems", "ops"}), else None.
    int8_litert: dict = None

    def to_dict(self) -> dict:
        return asdict(self)


class _Liveness(TorchDispatchMode):
    def __init__(self, weight_ids: set[int]):
        super().__init__()
        self.weight_ids = weight_ids
        self.buf_of: dict[int, int] = {}  # id(tensor) -> buffer
        self.keep: list = []  # keep tensors alive so ids are not reused
        self.size: list[int] = []
        self.events: list[tuple[str, list[int], list[int]]] = []

    def add_input(self, t: torch.Tensor) -> None:
        self.buf_of[id(t)] = len(self.size)
        self.size.append(t.numel())
        self.keep.append(t)

    def _buffers(self, obj, out: list[int]):
        if isinstance(obj, torch.Tensor):
            b = self.buf_of.get(id(obj))
            if b is not None and b not in out:
                out.append(b)
        elif isinstance(obj, (list, tuple)):
            for o in obj:
                self._buffers(o, out)
        elif isinstance(obj, dict):
            for o in obj.values():
                self._buffers(o, out)
        return out

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = func._schema.name.split("::")[-1]
        if name == "constant_pad_nd" and args and id(args[0]) in self.buf_of:
            self.buf_of[id(result)] = self.buf_of[id(args[0])]  # folded into the next convolution (SAME)
            self.keep.append(result)
            return result
        ins = self._buffers(args, []) + self._buffers(kwargs, [])
        if name == "convolution" and ins and id(args[0]) in self.buf_of:
            padded = _explicit_pad_elems(args)
            if padded:  # the exporter's PAD op: a padded copy of the input, read by the convolution only
                pad_buf = len(self.size)
                self.size.append(padded)
                self.events.append(("pad", [ins[0]], [pad_buf]))
                ins = [pad_buf] + ins[1:]
        weight_input = any(id(a) in self.weight_ids for a in args if isinstance(a, torch.Tensor))
        outs_t = result if isinstance(result, (list, tuple)) else [result]
        outs: list[int] = []
        schema_returns = func._schema.returns
        for i, t in enumerate(outs_t):
            if not isinstance(t, torch.Tensor):
                continue
            aliased = i < len(schema_returns) and schema_returns[i].alias_info is not None
            if aliased:
                first = next((a for a in args if isinstance(a, torch.Tensor)), None)
                if first is not None and id(first) in self.weight_ids:
                    self.weight_ids.add(id(t))
                elif first is not None and id(first) in self.buf_of:
                    self.buf_of[id(t)] = self.buf_of[id(first)]
                self.keep.append(t)
                continue
            if weight_input and not ins:  # derived from weights only (e.g. a transposed weight)
                self.weight_ids.add(id(t))
                self.keep.append(t)
                continue
            self.buf_of[id(t)] = len(self.size)
            self.size.append(t.numel())
            self.keep.append(t)
            outs.append(self.buf_of[id(t)])
        self.events.append((name, ins, outs))
        return result

    def peak(self, output_buffers: list[int]) -> tuple[int, int]:
        """(peak live elements, op count after fusion)."""
        n = len(self.events)
        parent = list(range(len(self.size)))

        def find(b):
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            return b

        last = [-1] * len(self.size)
        for i, (_, ins, _) in enumerate(self.events):
            for b in ins:
                last[b] = i
        for b in output_buffers:
            last[b] = n
        fused = 0
        for i, (name, ins, outs) in enumerate(self.events):
            # batch norm also returns per-channel statistics; the first output is the activation
            if name in _FUSABLE and len(ins) == 1 and outs:
                src = find(ins[0])
                if last[ins[0]] == i and self.size[outs[0]] <= self.size[src]:
                    parent[outs[0]] = src
                    fused += 1
        create = [0] * len(self.size)
        create[0] = -1
        for i, (_, _, outs) in enumerate(self.events):
            for o in outs:
                create[o] = i
        start: dict[int, int] = {}
        end: dict[int, int] = {}
        for b in range(len(self.size)):
            r = find(b)
            start[r] = min(start.get(r, create[b]), create[b])
            end[r] = max(end.get(r, last[b]), last[b], create[b])
        delta = [0] * (n + 3)
        for r in start:
            delta[start[r] + 1] += self.size[r]
            delta[end[r] + 2] -= self.size[r]
        live = peak = 0
        for d in delta:
            live += d
            peak = max(peak, live)
        compute_ops = sum(1 for name, ins, outs in self.events if outs)
        return peak, compute_ops - fused


def _same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TF's SAME padding (before, after) of one spatial dimension."""
    eff = (k - 1) * d + 1
    total = max((-(-size // s) - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _explicit_pad_elems(args) -> int:
    """Elements of the padded copy TFLite needs before this aten.convolution, or 0 when its padding is
    VALID or SAME (args: input, weight, bias, stride, padding, dilation, transposed, ...)."""
    x, w, _, stride, padding, dilation = args[:6]
    if len(args) > 6 and args[6]:  # transposed
        return 0
    n, c, h, wd = x.shape
    pads = []
    for size, k, s_, p, d in zip((h, wd), w.shape[2:], stride, padding, dilation, strict=True):
        if p == 0:
            pads.append((0, 0))
            continue
        if _same_pads(size, k, s_, d) == (p, p):
            pads.append((p, p))
            continue
        return int(n * c * (h + 2 * padding[0]) * (wd + 2 * padding[1]))
    return 0


def op_class(m: torch.nn.Module) -> str | None:
    """The op classes `edgefit calibrate` times separately."""
    if isinstance(m, torch.nn.Linear):
        return "dense"
    if isinstance(m, torch.nn.Conv2d):
        if m.groups > 1 and m.groups == m.in_channels:
            return "depthwise"
        if m.kernel_size == (1, 1) and m.groups == 1:
            return "pointwise"
        return "standard"
    return None


def _class_macs(model: torch.nn.Module) -> tuple[dict, list]:
    """Forward hooks that add each conv / linear layer's MACs to its op class."""
    totals = {"standard": 0, "depthwise": 0, "pointwise": 0, "dense": 0}
    handles = []
    for m in model.modules():
        cls = op_class(m)
        if cls is None:
            continue

        def hook(mod, inputs, output, cls=cls):
            per_out = mod.weight[0].numel()  # in_channels/groups * kh * kw (or in_features)
            totals[cls] += int(output.numel() // output.shape[0] * per_out)

        handles.append(m.register_forward_hook(hook))
    return totals, handles


def measure(model: torch.nn.Module, resolution: int, litert_int8_form: torch.nn.Module | None = None) -> NetStats:
    """Measure `model` (best built under `torch.device('meta')`) at a square input of `resolution`;
    `litert_int8_form`: the same network as `split_hard_swish` writes it, when the caller has it already."""
    stats = _measure(model, resolution)
    if any(isinstance(m, torch.nn.Hardswish) for m in model.modules()):
        other = _measure(litert_int8_form or _litert_int8_form(model), resolution)
        stats = replace(stats, int8_litert={"peak_act_elems": other.peak_act_elems, "ops": other.ops})
    return stats


def _measure(model: torch.nn.Module, resolution: int) -> NetStats:
    model.eval()
    device = next(model.parameters()).device
    x = torch.empty(1, 3, resolution, resolution, device=device)
    weight_ids = {id(p) for p in model.parameters()} | {id(b) for b in model.buffers()}
    weight_elems = out_channels = layers = 0
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            weight_elems += m.weight.numel()
            out_channels += m.weight.shape[0]
            layers += 1
    tracer = _Liveness(weight_ids)
    tracer.add_input(x)
    by_class, handles = _class_macs(model)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as flops, tracer:
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    out_bufs = tracer._buffers(y, [])
    peak, ops = tracer.peak(out_bufs)
    return NetStats(
        macs=int(flops.get_total_flops() // 2),
        params=int(sum(p.numel() for p in model.parameters())),
        weight_elems=int(weight_elems), out_channels=int(out_channels), weighted_layers=layers, ops=int(ops),
        peak_act_elems=int(peak), input_elems=int(x.numel()), output_elems=int(y.numel()), macs_by_class=by_class,
    )


def _litert_int8_form(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    from .export.deploy_form import split_hard_swish

    return split_hard_swish(copy.deepcopy(model))


def measure_variant(variant, num_classes: int) -> NetStats:
    return measure_variants([variant], num_classes)[variant.name]


def measure_variants(variants, num_classes: int, progress=None) -> dict[str, NetStats]:
    """Measure each variant; the variants of one architecture (same builder, other resolutions) share one
    network built on the meta device (the build is most of the time)."""
    from .zoo import build_model

    nets: dict[tuple, tuple] = {}
    out = {}
    for i, v in enumerate(variants):
        if progress:
            progress(i, len(variants), v.name)
        if v.builder not in nets:
            with torch.device("meta"):
                model = build_model(v, num_classes)
            split = _litert_int8_form(model) if any(isinstance(m, torch.nn.Hardswish) for m in model.modules()) \
                else None
            nets[v.builder] = (model, split)
        model, split = nets[v.builder]
        out[v.name] = measure(model, v.resolution, split)
    return out
