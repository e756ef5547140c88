"""Benchmark: the device loop's latency profile, validated on networks it never saw, against `edgefit bench`.

The whole loop as a user runs it, on this host standing in for the device:
1. `edgefit probe --calibration-set` packs zoo networks (for LiteRT, each cut into its kernels) with the held-out
   variants excluded; probe.py times them in a fresh Python (numpy and the runtime only), as on a device;
   `calibrate --from` fits the profile from its results (timed: the calibration set's run on this host).
2. Held out: --held-out N seeded zoo variants (untrained) and --pruned N networks (30% of channels removed from
   seeded held-out variants), deployed as export deploys them.
3. Ground truth: `edgefit bench` (its isolated process, the one timing protocol) times every held-out network,
   twice (two passes, minutes apart). The profile predicts each from its kernel list alone.
4. Diagnosis of the old offset: each held-out network is also timed with the protocol calibrate --profile used
   before (kernels.network_ms: three fresh sessions in a process that has torch loaded and has just run the
   profiler), and the offset of that against bench's pass is reported.
5. Ablation: the same results fitted without the calibration set's pruned networks.
Reports the share within +-10% of each pass, the median error, and how often the two passes agree within 10%.
Writes bench/results/latency_validation_<runtime>_<precision>.json; --keep DIR keeps the probe's results, the
held-out networks' kernel lists and both passes there (held_out.json); --refit DIR fits and predicts again from
what was kept there, without measuring (a change to the latency model, judged on the same measurements).

    .venv/bin/python bench/latency_validation.py [--runtime litert] [--precision int8] [--threads 2]
        [--networks 20] [--held-out 10] [--pruned 5] [--keep DIR | --refit DIR]
"""
from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import save  # noqa: E402


def _arg(name: str, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


RUNTIME, PRECISION = _arg("--runtime", "onnxruntime"), _arg("--precision", "fp32")
THREADS, NETWORKS = _arg("--threads", 2), _arg("--networks", 20)
HELD_OUT, PRUNED, PRUNE_RATIO = _arg("--held-out", 10), _arg("--pruned", 5), 0.3
KEEP, REFIT = _arg("--keep", ""), _arg("--refit", "")
EDGEFIT = [sys.executable, "-m", "edgefit"]


def _run(*args) -> str:
    r = subprocess.run([*EDGEFIT, *map(str, args)], capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"edgefit {' '.join(map(str, args))} failed: {r.stderr[-2000:]}")
    return r.stdout


def held_out_networks(work: Path) -> list[dict]:
    """The held-out networks as files: [{name, source, path, kernels}], built as calibration networks are."""
    from edgefit import zoo
    from edgefit.benchmark.latency_profile import CalibrationNetwork, list_kernels

    pool = random.Random(7).sample(list(zoo.variants()), HELD_OUT)
    nets = [CalibrationNetwork(v) for v in pool] + [
        CalibrationNetwork(v, PRUNE_RATIO) for v in random.Random(8).sample(pool, min(PRUNED, len(pool)))]
    out = []
    for n in nets:
        blob = n.graph(PRECISION, RUNTIME)
        path = work / f"{n.name}{'.tflite' if RUNTIME == 'litert' else '.onnx'}"
        path.write_bytes(blob)
        out.append({"name": n.name, "source": n.variant.name, "resolution": n.resolution, "path": str(path),
                    "kernels": list_kernels(blob, RUNTIME, THREADS, n.resolution)})
        print(f"held out {n.name}: {len(out[-1]['kernels'])} kernels", flush=True)
    return out


def bench_pass(nets: list[dict]) -> dict[str, float]:
    """bench's p50 of every network (one `edgefit bench` per network: its own isolated process)."""
    out = {}
    for n in nets:
        report = json.loads(_run("bench", n["path"], "--runtime", RUNTIME, "--threads", THREADS, "--json"))
        out[n["name"]] = report["results"][0]["p50_ms"]
    return out


def _old_measure(fn, warmup: int = 5, min_runs: int = 20, min_seconds: float = 0.3) -> float:
    """The timing loop calibrate used before the one protocol: warm-up, then one block of runs; its p50."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def old_protocol(nets: list[dict]) -> dict[str, float]:
    """The latency calibrate --profile measured before: the median of three fresh sessions' p50s, in this process,
    which has torch loaded and has just run the runtime's profiler on the network (as calibrate did)."""
    import numpy as np

    from edgefit.benchmark.latency_profile import sample_network
    from edgefit.benchmark.zoo_graph import noise
    from edgefit.runtimes import ort_session

    out = {}
    for n in nets:
        blob = Path(n["path"]).read_bytes()
        sample_network(blob, RUNTIME, THREADS, n["resolution"])  # the profiled run calibrate made first
        p50s = []
        for _ in range(3):
            if RUNTIME == "onnxruntime":
                sess = ort_session(blob, THREADS)
                feed = {sess.get_inputs()[0].name: noise((1, 3, n["resolution"], n["resolution"]))}
                p50s.append(_old_measure(lambda s=sess, f=feed: s.run(None, f)))
            else:
                from ai_edge_litert.interpreter import Interpreter

                it = Interpreter(model_content=blob, num_threads=THREADS)
                it.allocate_tensors()
                d = it.get_input_details()[0]
                it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
                p50s.append(_old_measure(it.invoke))
        out[n["name"]] = statistics.median(p50s)
    return out


def _share(errs: list[float]) -> dict:
    a = [abs(e) for e in errs]
    return {"networks": len(a), "share_within_10pct": round(sum(e <= 0.1 for e in a) / len(a), 4),
            "median_abs_error": round(statistics.median(a), 4),
            "median_signed_error": round(statistics.median(errs), 4)}


def measure() -> dict:
    """Held-out networks, the probe's calibration run and both bench passes, as measured now."""
    from edgefit.benchmark.on_target import load_results

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        nets = held_out_networks(work)
        exclude = ",".join(sorted({n["source"] for n in nets}))
        t = time.perf_counter()
        _run("probe", "--out", work / "probe", "--runtime", RUNTIME, "--calibration-set", "full",
             "--calibration-networks", NETWORKS, "--precision", PRECISION, "--exclude-variants", exclude,
             "--threads", THREADS)
        pack_s = time.perf_counter() - t
        t = time.perf_counter()
        r = subprocess.run([sys.executable, str(work / "probe" / "probe.py"), "--out", str(work / "results.json")],
                           capture_output=True, text=True)
        probe_s = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(f"probe.py failed: {r.stderr[-2000:]}")
        _run("calibrate", "--from", work / "results.json", "--profile", work / "profile.json")
        first = bench_pass(nets)
        old = old_protocol(nets)
        second = bench_pass(nets)
        held = [{**n, "bench_ms": first[n["name"]], "bench_again_ms": second[n["name"]],
                 "old_protocol_ms": old[n["name"]]} for n in nets]
        if KEEP:
            keep = Path(KEEP)
            keep.mkdir(parents=True, exist_ok=True)
            for f in ("results.json", "profile.json"):
                (keep / f).write_bytes((work / f).read_bytes())
            (keep / "held_out.json").write_text(json.dumps(held))
        return {"held": held, "measured": load_results(work / "results.json").networks(),
                "pack_s": round(pack_s, 1), "probe_run_s": round(probe_s, 1)}


def kept(folder: Path) -> dict:
    """What --keep kept, to refit without measuring again (--refit DIR): the probe's results and both passes;
    the calibration's timings and the old protocol's figures come from the results file written then."""
    from edgefit.benchmark.on_target import load_results

    prev = json.loads((ROOT / "bench" / "results" / f"latency_validation_{RUNTIME}_{PRECISION}.json").read_text())
    old = {r["network"]: r["old_protocol_ms"] for r in prev["rows"]}
    held = [{**n, "old_protocol_ms": n.get("old_protocol_ms", old[n["name"]])}
            for n in json.loads((folder / "held_out.json").read_text())]
    return {"held": held, "measured": load_results(folder / "results.json").networks(),
            "pack_s": prev["calibration"]["pack_s"], "probe_run_s": prev["calibration"]["probe_run_s"],
            "measured_on": prev.get("measured_on", prev["date"]),
            "refit": f"predictions refitted by this edgefit on the probe results and bench passes measured on "
                     f"{prev.get('measured_on', prev['date'])} (--keep, then --refit)"}


def main() -> None:
    from edgefit.benchmark.latency_model import fit, predict_ms
    from edgefit.benchmark.machine import info

    got = kept(Path(REFIT)) if REFIT else measure()
    measured = got["measured"]
    model = fit(measured)  # as calibrate --from fits it
    unpruned = fit([n for n in measured if ".pruned" not in n["name"]])
    rows = []
    for n in got["held"]:
        p, first, second = predict_ms(model, n["kernels"]), n["bench_ms"], n["bench_again_ms"]
        old = n["old_protocol_ms"]
        rows.append({"network": n["name"], "pruned": n["name"] != n["source"], "predicted_ms": round(p, 4),
                     "bench_ms": round(first, 4), "bench_again_ms": round(second, 4),
                     "old_protocol_ms": round(old, 4), "error": round(p / first - 1, 4),
                     "error_again": round(p / second - 1, 4), "passes_change": round(second / first - 1, 4),
                     "old_protocol_vs_bench": round(old / first - 1, 4),
                     "error_without_pruned_calibration": round(predict_ms(unpruned, n["kernels"]) / first - 1, 4)})
        print(json.dumps(rows[-1]), flush=True)
    repeat = _share([r["passes_change"] for r in rows])
    save(f"latency_validation_{RUNTIME}_{PRECISION}", {
        "benchmark": f"device-loop latency profile ({RUNTIME} {PRECISION}, {THREADS} thread(s)) on held-out networks "
                     "vs `edgefit bench`, two passes",
        **({k: got[k] for k in ("refit", "measured_on") if k in got}),
        "cpu": info()["cpu"], "calibration": {"networks": len(measured), "pack_s": got["pack_s"],
                                              "probe_run_s": got["probe_run_s"],
                                              "samples": sum(len(n["kernels"]) for n in measured),
                                              "networks_measured": [n["name"] for n in measured]},
        "against_first_pass": _share([r["error"] for r in rows]),
        "against_second_pass": _share([r["error_again"] for r in rows]),
        "zoo_variants": _share([r["error"] for r in rows if not r["pruned"]]),
        "pruned_networks": _share([r["error"] for r in rows if r["pruned"]]),
        "passes_agree_within_10pct": repeat["share_within_10pct"],
        "passes_median_change": repeat["median_abs_error"],
        "old_calibrate_protocol_vs_bench": _share([r["old_protocol_vs_bench"] for r in rows]),
        "fit_without_pruned_calibration_networks": _share([r["error_without_pruned_calibration"] for r in rows]),
        "rows": rows})


if __name__ == "__main__":
    main()
