"""The bench stage as a function: measure, judge against a budget, compare with a baseline."""
from __future__ import annotations

from pathlib import Path

from ..errors import BadInput
from ..verdict import tally
from . import machine
from .isolated import bench_isolated
from .units import BenchOptions, expand

__all__ = ["BenchOptions", "bench"]


def onnx_macs(path: Path) -> int | None:
    """Multiply-accumulates of Conv, Gemm and MatMul nodes, from ONNX shape inference."""
    import onnx
    from onnx import shape_inference

    try:
        model = shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception:  # noqa: BLE001
        return None
    g = model.graph
    shapes = {}
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        dims = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for n in g.node:
        if n.op_type == "Conv" and n.output[0] in shapes and n.input[1] in shapes:
            out, w = shapes[n.output[0]], shapes[n.input[1]]
            k = 1
            for d in w[1:]:
                k *= d
            size = 1
            for d in out:
                size *= d
            total += size * k
        elif n.op_type in ("Gemm", "MatMul") and n.input[1] in shapes and n.output[0] in shapes:
            w, out = shapes[n.input[1]], shapes[n.output[0]]
            size = 1
            for d in out:
                size *= d
            total += size * (w[0] if n.op_type == "MatMul" or not any(a.name == "transB" and a.i for a in n.attribute)
                             else w[1])
    return total or None


def _reference_stats(unit) -> dict | None:
    if not unit.manifest:
        return None
    ref = unit.path.parent / unit.manifest.get("reference_checkpoint", "reference.pt")
    if not ref.is_file():
        return None
    from .. import checkpoint
    from ..trace import measure

    ck = checkpoint.load(ref)
    return measure(checkpoint.build_model(ck), ck["preprocess"]["resolution"]).to_dict()


def _accuracy(unit, data: str, samples: int) -> float | None:
    if not unit.manifest:
        return None
    from .. import checkpoint
    from ..data.images import split_images
    from ..runtimes import top1

    ref = unit.path.parent / unit.manifest.get("reference_checkpoint", "reference.pt")
    images = split_images(checkpoint.Source(ref, checkpoint.load(ref), None), "val", data, samples)
    return top1(unit.path, images, unit.meta)


def budget_lines(row: dict, unit, budget, stats: dict | None, accuracy: float | None,
                 host_is_target: bool, on_target: tuple | None = None):
    """The verdict's lines for one measured artifact: its file, its predicted RAM and target latency (the
    cost model's one prediction, from the reference network or the ONNX graph's MACs), the FPS measured
    here, and its accuracy on --data. `on_target`: (OnTarget, its item for this file): target_fps is then the
    latency measured on the device, with the prediction beside it."""
    from ..costs import peak_ram_bytes, predict_latency, ram_how
    from ..precision import Precision
    from ..verdict import Figure, Figures, judge
    from .latency_profile import graph_for, load_profile

    name = row["model"]
    macs = (unit.meta or {}).get("macs") or (stats or {}).get("macs")
    if macs is None and unit.path.suffix == ".onnx":
        macs = onnx_macs(unit.path)
    precision = Precision.parse((unit.meta or {}).get("precision") or budget.precision)
    ram = latency = None
    if stats:
        io = "int8" if ((unit.meta or {}).get("input") or {}).get("dtype") == "int8" else "float"
        # manifests before the int8 graph was shaped per runtime wrote the float graph's ops (TFLM's form)
        int8_for = ((unit.manifest or {}).get("int8_graph") or {}).get("for", "tflite-micro")
        ram = Figure(peak_ram_bytes(stats, precision, io, int8_for) / 1024, ram_how(precision, io))
    ram, ram_predicted = measured_ram(unit.path, precision, ram) if budget.ram_kb is not None else (ram, None)
    graph = graph_for(unit.path, unit.runtime, (unit.meta or {}).get("precision"), budget)
    if stats or macs or (graph and load_profile(budget.latency_profile).applies_to(graph)):  # it needs no MACs
        latency = predict_latency(stats or {"macs": macs or 0}, budget, graph)
        latency = Figure(latency.value, "predicted on the target: " + latency.how)
    latency_predicted = None
    if on_target is not None:
        results, item = on_target
        latency_predicted = latency
        latency = Figure(item["p50_ms"], f"measured on the target: {results.label}, p50 of {item['runs']} runs "
                         f"(spread {item.get('spread', 0):.0%}; {Path(results.path).name})", measured=True)
    kb = row["size_bytes"] / 1024
    figs = Figures(storage_kb=Figure(kb, f"file {kb:.1f} KB", measured=True), ram_kb=ram, latency_ms=latency,
                   accuracy=None if accuracy is None else Figure(accuracy, "top-1 of this artifact on --data", True),
                   host_fps=Figure(row["fps"], "measured on this host", True) if row.get("fps") else None)
    predicted = Figures(ram_kb=ram_predicted, latency_ms=latency_predicted) if ram_predicted or latency_predicted \
        else None
    return judge(budget, figs, predicted, host_is_target=host_is_target, model=name).lines


def measured_ram(path, precision, estimate):
    """(the RAM figure to judge, the estimate beside it): an int8 .tflite runs once in TensorFlow Lite Micro
    and its arena is the measured figure; anything else keeps the estimate (no prediction beside it)."""
    from ..precision import Precision
    from ..tflm import available, measure_arena
    from ..verdict import Figure

    if Path(path).suffix != ".tflite" or precision is not Precision.INT8 or not available():
        return estimate, None
    arena = measure_arena(path)
    if not arena.ok:
        note = f"TFLite Micro cannot run it: {arena.error}"
        return (None if estimate is None else Figure(estimate.value, f"{estimate.how}; {note}")), None
    return Figure(arena.total_kb, arena.note(), measured=True), estimate


def _on_target(path: str, units, budget):
    """(the results, {unit path: its item}) of --on-target, checked before anything is timed: it needs a budget,
    a results file of the runtime the budget's latency profile is for, and at least one of these files."""
    from .latency_profile import load_profile
    from .on_target import load_results, matched

    if budget is None:
        raise BadInput("--on-target judges target_fps against a budget; add --budget BUDGET")
    results = load_results(path)
    if budget.latency_profile:
        prof = load_profile(budget.latency_profile)
        if prof.runtime != results.runtime:
            raise BadInput(f"--on-target {path} was measured with {results.runtime}, but the budget's latency profile "
                           f"is for {prof.runtime}; probe with --runtime {prof.runtime} or use a matching budget")
    return results, matched(results, [u.path for u in units if u.runtime == results.runtime])


def _compare_int8_with_fp32(results: list[dict]) -> None:
    """Mark each int8 row with its latency ratio to the fp32 artifact beside it (same folder, runtime, device,
    threads, batch): int8 exists to be faster, so `slower_than_fp32` is a finding, not a detail."""
    def key(r):
        return (str(Path(r["path"]).parent), r["runtime"], r["device"], r.get("threads"), r.get("batch"))

    fp32 = {key(r): r for r in results if r.get("precision") == "fp32" and "p50_ms" in r}
    for r in results:
        sibling = fp32.get(key(r))
        if r.get("precision") == "int8" and "p50_ms" in r and sibling:
            r["int8_vs_fp32"] = round(r["p50_ms"] / sibling["p50_ms"], 2)
            r["slower_than_fp32"] = r["p50_ms"] > sibling["p50_ms"]


def bench(models: list[str], opts: BenchOptions | None = None, budget=None) -> dict:
    """Measure every model file (or artifact folder) in `models`; judge each against `budget` when given."""
    opts = opts or BenchOptions()
    opts.validate()
    units = expand(models, list(opts.runtimes))
    if not units:
        raise BadInput(f"nothing to bench: no model matches --runtime {','.join(opts.runtimes)}")
    on_target = found = None
    if opts.on_target:
        on_target, found = _on_target(opts.on_target, units, budget)
    results = []
    stats_cache: dict = {}
    for unit in units:
        for device in opts.devices:
            row = bench_isolated(unit, device, opts)
            if budget is not None and unit.runtime != "torch" and "skipped" not in row:
                key = str(unit.path.parent)
                if key not in stats_cache:
                    stats_cache[key] = _reference_stats(unit)
                stats = stats_cache[key]
                acc = _accuracy(unit, opts.data, opts.samples) if opts.data else None
                item = (found or {}).get(str(unit.path))
                row["budget_lines"] = [ln.to_dict() for ln in budget_lines(
                    row, unit, budget, stats, acc, opts.host_is_target, item and (on_target, item))]
                if item:
                    row["on_target"] = {"device": on_target.device, "runtime": on_target.runtime_name,
                                        "version": on_target.runtime_version, "threads": on_target.threads,
                                        **{k: item.get(k) for k in ("p50_ms", "min_ms", "runs", "spread",
                                                                    "agreement")}}
            results.append(row)
    _compare_int8_with_fp32(results)
    report = {"schema": "edgefit-bench/1", "machine": machine.info(), "results": results}
    if budget is not None:
        lines = [ln for r in results for ln in r.get("budget_lines", [])]
        report["budget"] = {"name": budget.name, "storage_kb": budget.storage_kb, "runtime_kb": budget.runtime_kb,
                            "target_fps": budget.target_fps, "lines": lines,
                            "passed": tally(lines)[0]}
    if opts.baseline:
        from .reports import compare

        report["baseline"] = compare(results, opts.baseline)
    report["passed"] = (report.get("budget", {}).get("passed", True) and report.get("baseline", {}).get("passed", True))
    return report
