#!/usr/bin/env python3
"""probe.py: time edgefit models on the device itself and bring one JSON file back.

    python3 probe.py --out results.json [--threads N] [--minutes M]

Copy the whole probe folder (written by `edgefit probe`) to the device and run this script there. It needs
Python >= 3.9, numpy and the one runtime the folder names: ai-edge-litert (or tflite-runtime on 32-bit ARM) for
.tflite files, onnxruntime for .onnx files. It imports nothing else: no torch, TensorFlow, onnx or edgefit.

It measures every file listed in probe.json with one timing protocol (warm-up, then rounds that interleave the
files of a group, each round at least its share of the runs and seconds; p50, min and the spread between the
rounds' p50s), checks that the device's outputs agree with the host's on the bundled inputs, and records the
device (CPU, cores, governor and frequency when readable, OS, Python, runtime and version). Progress and an
ETA go to stderr. The results file is rewritten after every group, so a killed run keeps what it measured and
the same command continues it. Bring results.json back and give it to `edgefit bench --on-target` or
`edgefit calibrate --from`. Schema: edgefit-probe-results/1 (see the README in this folder).

This file is also where edgefit defines its timing protocol (`measure`): calibrate, bench and bench --variant
on the host use this same function.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

PROBE_SCHEMA = "edgefit-probe/1"
RESULTS_SCHEMA = "edgefit-probe-results/1"
# feed: a whole model's run sets its inputs, then runs (bench's unit of work); a cut-out kernel's only runs
PROTOCOL = {"warmup": 5, "warmup_seconds": 0.25, "rounds": 3, "min_runs": 20, "feed": "inputs set every run"}
QUICK = 0.2  # --quick: this share of each item's seconds


def fail(message: str):
    """Bad input or a missing package: one line on stderr, exit code 2."""
    print(message, file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------- the timing protocol
def summarize(ms: list, round_p50s: list | None = None) -> dict:
    """Statistics of latency samples in ms: runs, p50/p90/p99/mean/std/min/max, and with the rounds' own p50s
    their spread ((highest - lowest) / p50): how far the rounds of one measurement disagree."""
    import numpy as np

    a = np.asarray(ms, dtype=np.float64)
    p5, p50, p90, p95, p99 = (float(v) for v in np.percentile(a, [5, 50, 90, 95, 99]))
    out = {"runs": int(len(a)), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "p5_ms": p5, "p95_ms": p95,
           "mean_ms": float(a.mean()), "std_ms": float(a.std()), "min_ms": float(a.min()), "max_ms": float(a.max())}
    if round_p50s:
        out["round_p50_ms"] = [float(v) for v in round_p50s]
        out["spread"] = float((max(round_p50s) - min(round_p50s)) / p50) if p50 > 0 else 0.0
    return out


def measure(fns, warmup: int = PROTOCOL["warmup"], rounds: int = PROTOCOL["rounds"],
            min_runs: int = PROTOCOL["min_runs"], min_seconds: float = 1.0, max_runs: int = 100000,
            samples: bool = False, warmup_seconds: float = PROTOCOL["warmup_seconds"]):
    """edgefit's one timing protocol. `fns`: a zero-argument callable, or {name: callable} / {name: (callable,
    min_seconds)} to time together. Each is warmed up (at least `warmup` runs and warmup_seconds, at most a
    quarter of its own seconds); then `rounds` rounds run each in turn (interleaved, so slow drifts of the machine
    reach every one alike), each round at least min_runs / rounds runs and min_seconds / rounds seconds of it.
    Returns summarize()'s dict (with `samples_ms` when `samples`) for a callable, {name: that dict} for a mapping."""
    single = callable(fns)
    table = {"": (fns, min_seconds)} if single else {
        k: (v if isinstance(v, tuple) else (v, min_seconds)) for k, v in fns.items()}
    for fn, seconds in table.values():  # at least `warmup` runs and warmup_seconds (at most a quarter of its own
        start, budget = time.perf_counter(), min(warmup_seconds, seconds / 4)  # time): a fast model's first runs
        for i in range(max_runs):  # still pay for thread pools, caches and the clock ramping up
            if i >= warmup and time.perf_counter() - start >= budget:
                break
            fn()
    times: dict = {k: [] for k in table}
    per_round: dict = {k: [] for k in table}
    runs_per_round = max(1, -(-min_runs // rounds))
    clock = time.perf_counter
    for _ in range(rounds):
        for k, (fn, seconds) in table.items():
            block, budget = [], seconds / rounds
            start = clock()
            while len(block) < max_runs and (len(block) < runs_per_round or clock() - start < budget):
                t = clock()
                fn()
                block.append((clock() - t) * 1000)
            times[k] += block
            per_round[k].append(sorted(block)[len(block) // 2])
    out = {}
    for k in table:
        s = summarize(times[k], per_round[k] if rounds > 1 else None)
        if samples:
            s["samples_ms"] = [round(v, 5) for v in times[k]]
        out[k] = s
    return out[""] if single else out


# --------------------------------------------------------------------------------------------- the device
def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU's name: x86's "model name", an ARM board's "Model" / "Hardware" line, else what platform says."""
    info = _read("/proc/cpuinfo") or ""
    found = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        found.setdefault(key.strip(), value.strip())
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if found.get(key):
            return found[key]
    return platform.processor() or platform.machine()


def device_info() -> dict:
    """What the device is: CPU, cores (all, and those this process may use), frequency governor and clocks when
    readable, memory, OS and Python."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    freq = "/sys/devices/system/cpu/cpu0/cpufreq/"
    mem = next((ln.split()[1] for ln in (_read("/proc/meminfo") or "").splitlines() if ln.startswith("MemTotal")),
               None)
    khz = {k: _read(freq + f) for k, f in (("cur", "scaling_cur_freq"), ("max", "cpuinfo_max_freq"))}
    return {"cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(), "usable_cores": usable,
            "governor": _read(freq + "scaling_governor"),
            "cur_mhz": int(khz["cur"]) // 1000 if (khz["cur"] or "").isdigit() else None,
            "max_mhz": int(khz["max"]) // 1000 if (khz["max"] or "").isdigit() else None,
            "memory_mb": int(mem) // 1024 if mem and mem.isdigit() else None, "os": platform.platform(),
            "python": platform.python_version(), "hostname": platform.node()}


def _version(dist: str) -> str | None:
    try:
        from importlib import metadata

        return metadata.version(dist)
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return None


def runtime_module(runtime: str):
    """(Interpreter class or the onnxruntime module, {name, version}); exits with one line naming the package to
    install when the runtime is missing."""
    me = Path(sys.argv[0]).name or "probe.py"
    if runtime == "onnxruntime":
        try:
            import onnxruntime
        except ImportError:
            fail(f"{me}: error: onnxruntime is not installed; run `pip install onnxruntime`")
        return onnxruntime, {"name": "onnxruntime", "version": onnxruntime.__version__, "provider": "CPU"}
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, {"name": "ai-edge-litert", "version": _version("ai-edge-litert"), "delegate": "XNNPACK"}
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, {"name": "tflite-runtime", "version": _version("tflite-runtime"), "delegate": "XNNPACK"}
    except ImportError:
        fail(f"{me}: error: no TFLite runtime; run `pip install ai-edge-litert` (64-bit Linux, Python 3.10-3.13) "
             "or `pip install tflite-runtime` (32-bit ARM)")


# ------------------------------------------------------------------------------------------- the runtimes
def _random_input(shape, dtype, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        return rng.integers(-20 if dt.kind == "i" else 0, 20, size=shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


class TfliteModel:
    """A .tflite file in LiteRT's interpreter on seeded inputs. `run`, for a whole model (`feed`), sets its inputs and
    invokes it, as an application and edgefit bench do; for a kernel cut out of a network, it only invokes it (in
    the network its input is already in place)."""

    def __init__(self, Interpreter, path, threads: int, feed: bool = True):  # path: a file, or the model's bytes
        self.it = (Interpreter(model_content=path, num_threads=threads) if isinstance(path, bytes) else
                   Interpreter(model_path=str(path), num_threads=threads))
        self.it.allocate_tensors()
        self.inputs = self.it.get_input_details()
        self.fed_inputs = [(d["index"], _random_input(d["shape"], d["dtype"], i)) for i, d in enumerate(self.inputs)]
        for index, x in self.fed_inputs:
            self.it.set_tensor(index, x)
        self.run = self._fed if feed else self.it.invoke

    def _fed(self):
        for index, x in self.fed_inputs:
            self.it.set_tensor(index, x)
        self.it.invoke()

    def outputs(self, x_nchw, layout: str):
        """Dequantized outputs for float NCHW images, fed one by one with the model's layout and quantization."""
        import numpy as np

        d, o = self.inputs[0], self.it.get_output_details()[0]
        ys = []
        for x in x_nchw:
            x = x[None].transpose(0, 2, 3, 1) if layout == "NHWC" else x[None]
            scale, zp = d["quantization"]
            if np.dtype(d["dtype"]).kind in "iu" and scale:
                info = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale + zp), info.min, info.max)
            self.it.set_tensor(d["index"], x.astype(d["dtype"]))
            self.it.invoke()
            y = self.it.get_tensor(o["index"]).astype(np.float32)
            scale, zp = o["quantization"]
            ys.append((y - zp) * scale if np.dtype(o["dtype"]).kind in "iu" and scale else y)
        self.it.set_tensor(d["index"], _random_input(d["shape"], d["dtype"]))
        return np.concatenate(ys)


class OnnxModel:
    """An .onnx file in onnxruntime (CPU): `run` runs it on a seeded input; `profile` times each kernel."""

    def __init__(self, ort, path: Path, threads: int, profile_prefix: str | None = None):
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = threads
        if profile_prefix:
            so.enable_profiling = True
            so.profile_file_prefix = profile_prefix
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        self.name = inp.name
        self.feed = {inp.name: _random_input(dims, "float32")}
        self.run = lambda: self.session.run(None, self.feed)

    def outputs(self, x_nchw, layout: str):
        import numpy as np

        xs = x_nchw.transpose(0, 2, 3, 1) if layout == "NHWC" else x_nchw
        return np.concatenate([self.session.run(None, {self.name: x[None].astype(np.float32)})[0] for x in xs])


def ort_kernel_times(events: list, skip: int) -> list:
    """onnxruntime profiler events -> [{node, op, inputs, output, us}]: every kernel the runtime ran after its
    graph optimizer fused what it fuses, its median time over the profiled runs after the first `skip`."""
    def shapes(entries):
        return [[int(d) for d in next(iter(e.values()))] for e in entries or []]

    times: dict = {}
    kernels: dict = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        node = e["name"][: -len("_kernel_time")]
        args = e.get("args", {})
        times.setdefault(node, []).append(float(e["dur"]))
        kernels.setdefault(node, {"node": node, "op": args.get("op_name", "?"),
                                  "inputs": shapes(args.get("input_type_shape")),
                                  "output": (shapes(args.get("output_type_shape")) or [[]])[0]})
    out = []
    for node, k in kernels.items():
        ts = sorted(times[node][skip:] or times[node])
        out.append({**k, "us": ts[len(ts) // 2]})
    return out


def profile_onnx(ort, path: Path, threads: int, runs: int = 15, warmup: int = 3) -> list:
    """Each kernel of an ONNX network timed by onnxruntime's own profiler (median of `runs` after `warmup`)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        m = OnnxModel(ort, path, threads, str(Path(tmp) / "prof"))
        for _ in range(warmup + runs):
            m.run()
        events = json.loads(Path(m.session.end_profiling()).read_text())
    return ort_kernel_times(events, warmup)


# ---------------------------------------------------------------------------------------------- the run
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def rss_mb() -> float | None:
    """Peak resident memory of this process so far (Linux), MB."""
    status = _read("/proc/self/status") or ""
    kb = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM")), None)
    return round(int(kb) / 1024, 1) if kb else None


def groups_of(probe: dict) -> list:
    """What is measured together: all the artifacts in one group (interleaved, so they compare fairly), then one
    group per calibration network (the network and its cut-out kernels)."""
    out = []
    if probe.get("artifacts"):
        out.append({"id": "artifacts", "items": probe["artifacts"]})
    for net in (probe.get("calibration") or {}).get("networks", []):
        out.append({"id": f"network:{net['name']}", "network": net, "items": [net, *net.get("kernels", [])]})
    return out


def _agreement(model, item: dict, folder: Path) -> dict | None:
    """Top-1 agreement of the device's outputs with the host's on the bundled inputs (runtimes differ by build)."""
    import numpy as np

    if not item.get("inputs"):
        return None
    x = np.load(folder / item["inputs"], allow_pickle=False)
    host = np.load(folder / item["expected"], allow_pickle=False)
    y = model.outputs(x, item.get("layout", "NHWC"))
    span = float(host.max() - host.min()) or 1.0
    return {"images": int(len(x)), "top1_agreement": float((y.argmax(1) == host.argmax(1)).mean()),
            "max_rel_error": float(np.abs(y - host).max() / span), "inputs": item.get("inputs_from", "")}


def _open(runtime: str, lib, path: Path, threads: int, feed: bool = True):
    t = time.perf_counter()
    m = OnnxModel(lib, path, threads) if runtime == "onnxruntime" else TfliteModel(lib, path, threads, feed)
    load = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    m.run()
    return m, {"load_ms": round(load, 3), "first_ms": round((time.perf_counter() - t) * 1000, 3)}


def measure_group(group: dict, probe: dict, runtime: str, lib, threads: int, folder: Path) -> list:
    """Every item of one group, timed together; artifacts also checked against the host's outputs."""
    secs = probe["protocol"]
    models, rows, fns = {}, {}, {}
    for item in group["items"]:
        kind = item.get("kind", "kernel")
        m, first = _open(runtime, lib, folder / item["file"], threads, feed=kind != "kernel")
        models[item["id"]] = m
        rows[item["id"]] = {"id": item["id"], "kind": kind, "file": item["file"], "sha256": item["sha256"],
                            **({"name": item["name"]} if "name" in item else {}), **first}
        fns[item["id"]] = (m.run, secs[f"{kind}_seconds"])
    stats = measure(fns, rounds=secs["rounds"], warmup=secs["warmup"], min_runs=secs["min_runs"],
                    warmup_seconds=secs.get("warmup_seconds", PROTOCOL["warmup_seconds"]),
                    samples=True)
    for item in group["items"]:
        row, s = rows[item["id"]], stats[item["id"]]
        if item.get("kind") == "kernel":
            s.pop("samples_ms")
            row["record"] = item["record"]
        row.update({k: round(v, 5) if isinstance(v, float) else v for k, v in s.items()})
        if item.get("kind") == "artifact":
            row["agreement"] = _agreement(models[item["id"]], item, folder)
    net = group.get("network")
    if net is not None and runtime == "onnxruntime":  # its kernels, from onnxruntime's own profiler
        rows[net["id"]]["kernels"] = profile_onnx(lib, folder / net["file"], threads)
    return [rows[item["id"]] for item in group["items"]]


def _budget_s(group: dict, probe: dict) -> float:
    secs = probe["protocol"]
    return sum(secs[f"{i.get('kind', 'kernel')}_seconds"] + 0.05 for i in group["items"])


def _eta(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def main(argv=None) -> int:
    me = Path(sys.argv[0]).name or "probe.py"
    folder = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description="Time the edgefit models of this folder on this device.")
    ap.add_argument("--out", required=True, help="results file to write (and to continue, when it exists)")
    ap.add_argument("--threads", type=int, default=None, help="runtime threads [probe.json's, else all cores]")
    ap.add_argument("--minutes", type=float, default=None, help="stop after about this long (rerun to continue)")
    ap.add_argument("--quick", action="store_true", help=f"time each file for {QUICK:g} of the probe's seconds: a "
                    "first look, less exact (the results record the protocol used)")
    args = ap.parse_args(argv)
    probe_path = folder / "probe.json"
    try:
        probe = json.loads(probe_path.read_text())
    except (OSError, ValueError) as e:
        fail(f"{me}: error: {probe_path} is missing or unreadable ({e}); copy the whole probe folder")
    if probe.get("schema") != PROBE_SCHEMA:
        fail(f"{me}: error: {probe_path} is not an edgefit probe folder ({PROBE_SCHEMA})")
    if args.threads is not None and args.threads < 1:
        fail(f"{me}: error: --threads must be 1 or more")
    if args.quick:
        probe["protocol"] = {k: v * QUICK if k.endswith("_seconds") else v for k, v in probe["protocol"].items()}
    runtime = probe["runtime"]
    lib, runtime_desc = runtime_module(runtime)
    threads = args.threads or probe.get("threads") or (device_info()["usable_cores"] or 1)
    out = Path(args.out)
    digest = sha256(probe_path)
    results = {"schema": RESULTS_SCHEMA, "probe_sha256": digest, "edgefit_version": probe.get("edgefit_version"),
               "runtime": {**runtime_desc, "kind": runtime}, "threads": threads, "device": device_info(),
               "protocol": probe["protocol"],
               "calibration": {k: v for k, v in (probe.get("calibration") or {}).items() if k != "networks"},
               "complete": False, "groups_done": [], "items": [], "wall_s": 0.0}
    if out.is_file():
        try:
            old = json.loads(out.read_text())
        except ValueError:
            fail(f"{me}: error: {out} exists and is not a results file; give another --out")
        if old.get("probe_sha256") != digest or old.get("threads") != threads or old.get("protocol") != probe[
                "protocol"]:
            fail(f"{me}: error: {out} holds results of another probe folder, thread count or protocol (--quick); "
                 "give another --out")
        results.update({k: old[k] for k in ("groups_done", "items", "wall_s")})
    groups = groups_of(probe)
    for g in groups:  # a file changed or damaged in the copy is caught before it is timed
        for item in g["items"]:
            if sha256(folder / item["file"]) != item["sha256"]:
                fail(f"{me}: error: {item['file']} differs from what edgefit packed (sha256); copy it again")
    todo = [g for g in groups if g["id"] not in results["groups_done"]]
    total = sum(_budget_s(g, probe) for g in todo)
    t0, spent_budget = time.perf_counter(), 0.0
    start_wall = results["wall_s"]
    print(f"{me}: {len(todo)} of {len(groups)} groups to measure on {results['device']['cpu']}, {runtime_desc['name']} "
          f"{runtime_desc['version']}, {threads} thread(s); about {_eta(total)}", file=sys.stderr, flush=True)
    for i, g in enumerate(todo):
        elapsed = time.perf_counter() - t0
        rate = elapsed / spent_budget if spent_budget else 1.0
        if args.minutes is not None and i and elapsed + rate * _budget_s(g, probe) > args.minutes * 60:
            print(f"{me}: stopped after {_eta(elapsed)} (--minutes {args.minutes:g}): {len(results['groups_done'])} "
                  f"of {len(groups)} groups measured; run the same command again to continue", file=sys.stderr)
            break
        results["items"] += measure_group(g, probe, runtime, lib, threads, folder)
        results["groups_done"].append(g["id"])
        spent_budget += _budget_s(g, probe)
        elapsed = time.perf_counter() - t0
        results.update(wall_s=round(start_wall + elapsed, 1), peak_rss_mb=rss_mb(),
                       complete=len(results["groups_done"]) == len(groups),
                       updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_json(out, results)
        left = (total - spent_budget) * (elapsed / spent_budget)
        print(f"{me}: [{len(results['groups_done'])}/{len(groups)}] {g['id']}: {len(g['items'])} file(s); "
              f"about {_eta(left)} left", file=sys.stderr, flush=True)
    if not todo:
        write_json(out, {**results, "complete": True})
    done = len(results["groups_done"]) == len(groups)
    if done:
        print(f"{me}: wrote {out}: bring it back to the host (edgefit bench --on-target / calibrate --from)",
              file=sys.stderr)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
