"""Kernel samples: what each node of a network costs in onnxruntime, from the runtime's own profiler.

onnxruntime's per-node profiling (`SessionOptions.enable_profiling`) reports every kernel it ran, after its
graph optimizer fused what it fuses (Conv+BatchNorm+activation into one `FusedConv`, ...): the fused-kernel
detection nn-Meter does by hand comes from the runtime itself. Each event carries the op type and the
input/output shapes (weights included), which are the regression features (profile.py).
"""
from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

WARMUP = 3


def _shapes(entries) -> list[list[int]]:
    return [[int(d) for d in next(iter(e.values()))] for e in entries or []]


def network_ms(onnx_bytes: bytes, x, threads: int, sessions: int = 3) -> float:
    """The network's latency without the profiler: the median over `sessions` fresh sessions of each one's
    p50 (one session's p50 moves by 10-30% run to run on a shared 2-core host; the median of three, less)."""
    from ..runtimes import ort_session
    from ..timing import measure

    p50s = []
    for _ in range(sessions):
        sess = ort_session(onnx_bytes, threads)
        name = sess.get_inputs()[0].name
        p50s.append(measure(lambda s=sess, n=name: s.run(None, {n: x}), min_runs=20, min_seconds=0.3)["p50_ms"])
    return statistics.median(p50s)


def profile_network(onnx_bytes: bytes, x, threads: int, runs: int = 15) -> tuple[list[dict], float]:
    """([{node, op, inputs, output, us}], measured ms) of one network: each kernel's median time over `runs`
    profiled runs (after WARMUP), and the network's latency timed without the profiler (network_ms)."""
    return _profiled(onnx_bytes, x, threads, runs), network_ms(onnx_bytes, x, threads)


def _profiled(onnx_bytes: bytes, x, threads: int, runs: int) -> list[dict]:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "prof")
        if threads:
            so.intra_op_num_threads = threads
        sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for _ in range(WARMUP + runs):
            sess.run(None, {name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    times: dict[str, list[float]] = {}
    kernels: dict[str, dict] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        node = e["name"][: -len("_kernel_time")]
        args = e.get("args", {})
        times.setdefault(node, []).append(float(e["dur"]))
        kernels.setdefault(node, {"node": node, "op": args.get("op_name", "?"),
                                  "inputs": _shapes(args.get("input_type_shape")),
                                  "output": (_shapes(args.get("output_type_shape")) or [[]])[0]})
    out = []
    for node, k in kernels.items():
        ts = times[node][WARMUP:] or times[node]
        out.append({**k, "us": statistics.median(ts)})
    return out


def kernels_of(onnx_bytes: bytes, x, threads: int) -> list[dict]:
    """The kernels one profiled run executes (op and shapes; their times are not used): what a prediction
    sums over. One run on this host only enumerates the optimized graph."""
    return _profiled(onnx_bytes, x, threads, runs=1)
