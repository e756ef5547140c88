"""Benchmark: `make demo`'s build from nothing, on this machine (issue 30: <= 240 s on 2 cores, every budget line
passed).

Generates the demo images exactly as `make demo` does, then runs `edgefit build` with the Makefile's
DEMO_BUILD_ARGS into a fresh directory with an empty cost cache (a fresh machine measures the zoo
once), and records the whole-process wall time, the stage times and every report line.
Writes bench/results/build_demo.json and the build's report.md as bench/results/build_demo_report.md.

    .venv/bin/python bench/build_demo.py
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import save  # noqa: E402

EDGEFIT = str(Path(sys.executable).with_name("edgefit"))


def demo_args(data: Path, out: Path) -> list[str]:
    text = (ROOT / "Makefile").read_text()
    args = re.search(r"^DEMO_BUILD_ARGS := (.+)$", text, re.M).group(1)
    args = args.replace("$(DEMO_DATA)", str(data))
    return [str(out) if a == "runs/demo-build" else a for a in shlex.split(args)]


def main() -> None:
    from edgefit.benchmark.machine import cpu_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "EDGEFIT_CACHE_DIR": str(tmp / "cache")}
        t0 = time.perf_counter()
        subprocess.run([EDGEFIT, "demo-data", str(tmp / "data"), "--classes", "10", "--per-class", "200",
                        "--size", "96"], check=True, capture_output=True, env=env)
        data_s = time.perf_counter() - t0
        args = demo_args(tmp / "data", tmp / "build")
        t = time.perf_counter()
        r = subprocess.run([EDGEFIT, "build", *args], capture_output=True, text=True, env=env)
        build_s = time.perf_counter() - t
        if r.returncode not in (0, 1):
            raise SystemExit(r.stderr[-3000:])
        rep = json.loads((tmp / "build" / "report.json").read_text())
        report_md = (tmp / "build" / "report.md").read_text().replace(str(tmp / "build"), "runs/demo-build")
        (ROOT / "bench" / "results" / "build_demo_report.md").write_text(report_md.replace(str(tmp / "data"),
                                                                                           "runs/demo-data"))
    result = {
        "benchmark": "make demo's edgefit build from nothing (fresh cost cache), 2 cores",
        "command": "edgefit build " + " ".join(demo_args(Path("runs/demo-data"), Path("runs/demo-build"))),
        "exit_code": r.returncode,
        "passed": rep["passed"],
        "target": {"wall_seconds_max": 240, "every_line_passes": True},
        "cpu": cpu_model(),
        "stderr_lines": [ln for ln in r.stderr.splitlines() if ln.strip()],
        "build_wall_seconds": round(build_s, 1),
        "demo_data_seconds": round(data_s, 1),
        "stage_seconds": {k: v["seconds"] for k, v in rep["stages"].items()},
        "model": rep["model"]["variant"],
        "candidates_tried": rep["candidates"]["tried"],
        "lines": [{k: ln[k] for k in ("constraint", "limit", "predicted", "value", "passed", "margin", "gating")}
                  for ln in rep["lines"]],
    }
    save("build_demo", result)


if __name__ == "__main__":
    main()
