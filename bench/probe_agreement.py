"""Benchmark: does the device probe measure what `edgefit bench` measures, for the same files on the same host?

The artifacts of an export folder are packed (`edgefit probe`) and timed by probe.py in a bare Python (numpy and
the runtime; the heavy stack is not imported), then by `edgefit bench`, alternately, --passes times, with the
same threads. Reports each file's p50 from both and their ratio per pass (target: within 5%), and how far each
tool's passes agree with themselves. Writes bench/results/probe_agreement_<runtime>.json.

    .venv/bin/python bench/probe_agreement.py ART_DIR [--runtime litert] [--threads 2] [--passes 3]
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import save  # noqa: E402


def _arg(name: str, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


RUNTIME, THREADS, PASSES = _arg("--runtime", "litert"), _arg("--threads", 2), _arg("--passes", 3)
EDGEFIT = [sys.executable, "-m", "edgefit"]


def main() -> None:
    from edgefit.benchmark.machine import cpu_model
    from edgefit.vocabulary import SUFFIX_OF

    art = Path(sys.argv[1])
    files = sorted(art.glob(f"*{SUFFIX_OF[RUNTIME]}"))
    rows = {f.name: {"probe_ms": [], "bench_ms": []} for f in files}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*EDGEFIT, "probe", str(art), "--out", f"{tmp}/p", "--runtime", RUNTIME, "--threads",
                        str(THREADS)], check=True, capture_output=True)
        for i in range(PASSES):
            res = Path(tmp) / f"r{i}.json"
            subprocess.run([sys.executable, f"{tmp}/p/probe.py", "--out", str(res)], check=True, capture_output=True)
            for item in json.loads(res.read_text())["items"]:
                rows[item["name"]]["probe_ms"].append(item["p50_ms"])
            for f in files:
                r = subprocess.run([*EDGEFIT, "bench", str(f), "--runtime", RUNTIME, "--threads", str(THREADS),
                                    "--json"], check=True, capture_output=True, text=True)
                rows[f.name]["bench_ms"].append(json.loads(r.stdout)["results"][0]["p50_ms"])
    for r in rows.values():
        r["ratio_per_pass"] = [round(p / b, 4) for p, b in zip(r["probe_ms"], r["bench_ms"], strict=True)]
        r["median_ratio"] = round(statistics.median(r["ratio_per_pass"]), 4)
        for k in ("probe_ms", "bench_ms"):
            r[f"{k[:-3]}_spread"] = round((max(r[k]) - min(r[k])) / statistics.median(r[k]), 4)
    ratios = [abs(x - 1) for r in rows.values() for x in r["ratio_per_pass"]]
    save(f"probe_agreement_{RUNTIME}", {
        "benchmark": f"probe.py (bare Python) vs `edgefit bench` on the same files, {RUNTIME}, {THREADS} threads, "
                     f"{PASSES} alternating passes", "cpu": cpu_model(), "files": rows,
        "share_of_pairs_within_5pct": round(sum(x <= 0.05 for x in ratios) / len(ratios), 4),
        "median_abs_difference": round(statistics.median(ratios), 4)})


if __name__ == "__main__":
    main()
