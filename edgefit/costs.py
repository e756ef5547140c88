"""The cost model: what a variant costs on a budget's device, computed from the real network.

Network statistics (MACs, parameters, layer counts, activation liveness) are measured once per
catalog content, library versions and class count (see trace.py) and cached on disk as JSON, so a
warm `edgefit select` never imports torch. Everything precision- and device-dependent is derived
here from those statistics:

- latency on the target = 2 * MACs / flops_per_sec (one MAC is two FLOPs), or per op class with the
  budget's op_flops_per_sec (from `edgefit calibrate`); FPS = 1 / latency
- deployable file size = weights at the precision's width + per-output-channel bias and
  quantization parameters + per-operator and fixed format overhead (coefficients in SIZE_MODEL)
- RAM: for int8, the arena TensorFlow Lite Micro allocates (bench/ram_truth.py checks it): the liveness
  peak of the graph as deployed (trace.py; with float I/O at least 5 bytes per input element, the float
  input and its int8 copy alive together) plus the runtime's persistent memory (TFLM_TAIL, fitted); for
  float16 / float32, peak live activation elements * bytes per element (activations only)
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import zoo
from .benchmark.latency_profile import Graph, load_profile
from .budget import Budget
from .fsutil import atomic_write_json
from .paths import cache_dir, lib_version
from .precision import Precision
from .verdict import Figure, Figures

COST_MODEL_VERSION = 5

# Bytes in a TFLite flatbuffer written by edgefit export (onnx2tf). int8 per output channel: an int32
# bias plus float32 scales and int64 zero points (~28 B by construction). The per-channel and per-op
# bytes were fitted (least squares on relative error, no intercept) to the real files of 13 variants
# in bench/export_size.py; max error there: int8 1.2%, fp16 0.6%, fp32 0.3%.
SIZE_MODEL = {
    "int8": {"weight": 1, "per_channel": 25.6, "per_op": 252, "fixed": 0},
    "float16": {"weight": 2, "per_channel": 0.8, "per_op": 271, "fixed": 0},
    "float32": {"weight": 4, "per_channel": 1.5, "per_op": 177, "fixed": 0},
}


# TFLite Micro's persistent arena ("tail": tensor structs, per-channel requantization multipliers and
# shifts, op data) in bytes per output channel and per op. Fitted (least squares, no intercept) to the tails
# TFLM reported for one variant of each of the 7 families in bench/ram_truth.py (the tail does not depend
# on the resolution): max error 4.6% of the tail. ~8 B per channel is TFLM's int32 multiplier + shift.
TFLM_TAIL = {"per_channel": 7.82, "per_op": 173.7}


def cache_key(num_classes: int) -> str:
    parts = [zoo.catalog_digest(), str(COST_MODEL_VERSION), str(num_classes),
             lib_version("torch"), lib_version("timm")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def cache_path(num_classes: int) -> Path:
    return cache_dir() / f"zoo-stats-{num_classes}c-{cache_key(num_classes)}.json"


TABLE_SCHEMA = "edgefit-cost-table/1"
TABLE_CLASSES = (2, 1000)  # the class counts model_zoo/make_cost_table.py traces; any count between is derived
TABLE_PATH = zoo.catalog_path().parent / "cost_table.json"


_NOT_EXACT = object()


def _between(lo, hi, n: int, n_lo: int, n_hi: int):
    """A statistic at n classes from its values at n_lo and n_hi: the same, or linear in the class count (exactly:
    the classifier adds the same whole number per class); _NOT_EXACT when neither holds."""
    if isinstance(lo, dict) and isinstance(hi, dict):
        if set(lo) != set(hi):
            return _NOT_EXACT
        out = {k: _between(lo[k], hi[k], n, n_lo, n_hi) for k in lo}
        return _NOT_EXACT if any(v is _NOT_EXACT for v in out.values()) else out
    if lo == hi:
        return lo
    if not isinstance(lo, int) or not isinstance(hi, int):
        return _NOT_EXACT
    per_class, rest = divmod(hi - lo, n_hi - n_lo)
    return _NOT_EXACT if rest else lo + per_class * (n - n_lo)


def table_stats(num_classes: int) -> dict[str, dict] | None:
    """Every variant's statistics for `num_classes` from the shipped table (model_zoo/cost_table.json), without
    torch; None when the table is missing, made for another catalog or cost model, or cannot give this count
    exactly (outside its class range, or a statistic that is neither constant nor linear in the classes)."""
    try:
        table = json.loads(TABLE_PATH.read_text())
    except (OSError, ValueError):
        return None
    n_lo, n_hi = table.get("classes", (0, 0))
    if (table.get("schema") != TABLE_SCHEMA or table.get("catalog") != zoo.catalog_digest()
            or table.get("cost_model_version") != COST_MODEL_VERSION or not n_lo <= num_classes <= n_hi):
        return None
    out = {}
    for v in zoo.variants():
        entry = table["variants"].get(v.name)
        lo, hi = (entry or {}).get(str(n_lo)), (entry or {}).get(str(n_hi))
        if lo is None or hi is None or lo["peak_act_elems"] != hi["peak_act_elems"]:
            return None  # the classifier may set the peak: trace
        stats = _between(lo, hi, num_classes, n_lo, n_hi)
        if stats is _NOT_EXACT:
            return None
        out[v.name] = stats
    return out


def zoo_stats(num_classes: int, progress: Callable[[int, int, str], None] | None = None) -> dict[str, dict]:
    """Statistics of every catalog variant for `num_classes`: from the shipped table when it gives them exactly,
    else from the cache or measured now (torch, ~15 s for the zoo)."""
    shipped = table_stats(num_classes)
    if shipped is not None:
        return shipped
    path = cache_path(num_classes)
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            if set(cached["variants"]) == {v.name for v in zoo.variants()}:
                return cached["variants"]
        except (ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    from .trace import measure_variants  # imports torch

    stats = {name: s.to_dict() for name, s in measure_variants(zoo.variants(), num_classes, progress).items()}
    try:
        atomic_write_json(path, {"key": cache_key(num_classes), "num_classes": num_classes, "variants": stats})
    except OSError as e:  # a read-only cache is slower, not wrong
        print(f"edgefit: could not write the cost cache {path}: {e.strerror}", file=sys.stderr)
    return stats


def predicted_size_bytes(stats: dict, precision: str) -> float:
    c = SIZE_MODEL[Precision.parse(precision).budget_name]
    return (stats["weight_elems"] * c["weight"] + stats["out_channels"] * c["per_channel"]
            + stats["ops"] * c["per_op"] + c["fixed"])


def peak_ram_bytes(stats: dict, precision: str, io: str = "float", int8_for: str = "litert") -> float:
    """Predicted RAM in bytes. int8: TFLM's arena (activations of the deployed graph + persistent memory) for
    float or int8 model input/output, of the int8 graph shaped for `int8_for` (litert | tflite-micro, see
    export/deploy_form.py); other precisions: peak activations only (see ram_how)."""
    p = Precision.parse(precision)
    if p is not Precision.INT8:
        return stats["peak_act_elems"] * p.bytes_per_element
    graph = (int8_for == "litert" and stats.get("int8_litert")) or stats
    head = graph["peak_act_elems"]
    if io == "float":  # the float32 input and its int8 copy are alive together
        head = max(head, 5 * stats["input_elems"])
    return head + stats["out_channels"] * TFLM_TAIL["per_channel"] + graph["ops"] * TFLM_TAIL["per_op"]


def ram_how(precision: str, io: str = "float") -> str:
    if Precision.parse(precision) is Precision.INT8:
        return (f"predicted TFLite Micro arena, {io} I/O: activations of the graph as deployed (liveness) "
                "+ persistent memory (fitted per channel and op)")
    return f"predicted peak activation memory at {Precision.parse(precision).value} (tensor liveness)"


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int
    size_kb: float
    peak_ram_kb: float
    latency_ms: float
    fps: float
    latency_method: str = "2 x MACs / flops_per_sec"
    ram_method: str = "predicted peak activation memory (tensor liveness)"

    def figures(self, accuracy: Figure | None = None) -> Figures:
        """The cost as the verdict's predicted figures."""
        return Figures(storage_kb=Figure(self.size_kb, "predicted file size (cost model)"),
                       ram_kb=Figure(self.peak_ram_kb, self.ram_method),
                       latency_ms=Figure(self.latency_ms, f"predicted: {self.latency_method}"), accuracy=accuracy)


def latency_seconds(stats: dict, budget: Budget) -> float:
    return predict_latency(stats, budget).value / 1000


def predict_latency(stats: dict, budget: Budget, graph: Graph | None = None) -> Figure:
    """The one latency prediction on the budget's target, in ms. With the budget's latency_profile and the
    network's kernel list in the profile's runtime and precision (`graph`), the fitted profile; otherwise
    2 x MACs / flops_per_sec, or with op_flops_per_sec each op class at its own rate (MACs outside the four
    classes at flops_per_sec), and the figure says why the profile did not apply."""
    unused = ""
    if budget.latency_profile:
        prof = load_profile(budget.latency_profile)
        if prof.applies_to(graph):
            return Figure(prof.predict_ms(graph.kernels), f"{prof.label}, {len(graph.kernels)} kernels")
        if graph is None:
            why = "no kernel list for this network"
        elif not prof.covers(graph.runtime, graph.precision):
            why = f"the network runs {graph.runtime} {graph.precision}"
        else:
            why = "its kernels could not be listed (dynamic input shape)"
        unused = f"; {prof.label} not applied: {why}"
    by_class = stats.get("macs_by_class") or {}
    rates = budget.op_flops_per_sec or {}
    seconds, counted = 0.0, 0
    for cls, rate in rates.items():
        macs = by_class.get(cls, 0)
        seconds += 2 * macs / rate
        counted += macs
    seconds += 2 * (stats["macs"] - counted) / budget.flops_per_sec
    how = ("per op class: 2 x MACs / op_flops_per_sec" if rates else "2 x MACs / flops_per_sec") \
        + f" ({stats['macs'] / 1e6:.1f} M MACs)" + unused
    return Figure(seconds * 1000, how)


def cost(stats: dict, budget: Budget, precision: str | None = None, graph: Graph | None = None) -> Cost:
    latency = predict_latency(stats, budget, graph)
    p = precision or budget.precision
    return Cost(
        macs=int(stats["macs"]), params=int(stats["params"]),
        size_kb=predicted_size_bytes(stats, p) / 1024,
        peak_ram_kb=peak_ram_bytes(stats, p, budget.io, budget.int8_for) / 1024,
        latency_ms=latency.value, fps=1000 / latency.value, latency_method=latency.how,
        ram_method=ram_how(p, budget.io),
    )
