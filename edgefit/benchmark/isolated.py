"""One bench unit in a fresh Python process: its peak memory is its own, and no earlier model's threads,
arenas or caches sit beside it while it is timed.

The parent writes the unit and the options as JSON, runs `python -m edgefit.benchmark.isolated IN OUT`, and
reads the row back (a subprocess, not multiprocessing: nothing of the caller's `__main__` is re-run).
Memory, from the process's own high-water mark (VmHWM on Linux, else `getrusage` ru_maxrss):
- `peak_rss_mb`: the isolated process's peak (interpreter, numpy, the runtime library, the model, inference);
- `model_rss_mb`: that peak less the peak after the runtime library was imported and before the model was
  loaded: what loading and running this model added in this runtime.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import errors
from ..errors import EdgefitError


def _peak_mb() -> float:
    """This process's peak resident memory. On Linux the address space's own high-water mark (VmHWM), since
    ru_maxrss survives exec: a process started by a larger one (pytest, a notebook) reports its parent's peak."""
    import resource

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux


def _import_runtime(runtime: str) -> None:
    if runtime == "onnxruntime":
        import onnxruntime  # noqa: F401
    elif runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    else:
        import torch  # noqa: F401

        from .. import checkpoint  # noqa: F401  (timm)


def bench_isolated(unit, device: str, opts) -> dict:
    """`run.bench_unit` for `unit` on `device` in a fresh process, with its memory figures."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps({"unit": {"path": str(unit.path), "runtime": unit.runtime, "meta": unit.meta,
                                            "manifest": unit.manifest, "label": unit.label},
                                   "device": device, "opts": dataclasses.asdict(opts)}))
        proc = subprocess.run([sys.executable, "-m", "edgefit.benchmark.isolated", str(src), str(dst)],
                              capture_output=True, text=True)
        if not dst.is_file():
            tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][:300]
            return {"model": unit.label or unit.path.name, "path": str(unit.path), "runtime": unit.runtime,
                    "device": device, "skipped": f"{unit.runtime} crashed in its isolated process: {tail}"}
        out = json.loads(dst.read_text())
    if "error" in out:
        raise getattr(errors, out["error"], EdgefitError)(out["message"])
    return out["row"]


def _main(src: str, dst: str) -> None:
    from .run import bench_unit
    from .units import BenchOptions, Unit

    job = json.loads(Path(src).read_text())
    u = job["unit"]
    unit = Unit(Path(u["path"]), u["runtime"], u["meta"], u["manifest"], u["label"])
    opts = job["opts"]
    opts = BenchOptions(**{**opts, "runtimes": tuple(opts["runtimes"]), "devices": tuple(opts["devices"]),
                           "input_shape": None if opts["input_shape"] is None else tuple(opts["input_shape"])})
    try:
        _import_runtime(unit.runtime)
        before = _peak_mb()
        row = bench_unit(unit, job["device"], opts)
        if "skipped" not in row:
            peak = _peak_mb()
            row.update(peak_rss_mb=round(peak, 1), model_rss_mb=round(peak - before, 1))
        out = {"row": row}
    except EdgefitError as e:
        out = {"error": type(e).__name__, "message": str(e)}
    Path(dst).write_text(json.dumps(out))


if __name__ == "__main__":
    _main(*sys.argv[1:3])
