"""A probe's results, read back on the host: what the target device measured (device/probe.py, schema
edgefit-probe-results/1). `bench --on-target` judges target_fps by an artifact's latency measured there (matched
by sha256); `calibrate --from` fits a latency profile from its calibration networks.

    from edgefit.benchmark.on_target import load_results
    r = load_results("results.json")
    print(r.label, r.artifact_ms(sha256_of_my_tflite))
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..device.probe import RESULTS_SCHEMA
from ..errors import BadInput
from ..vocabulary import PACKAGE_RUNTIME, PROFILED_RUNTIMES


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class OnTarget:
    """One results file: the device, the runtime it ran (litert | onnxruntime), threads, and every item."""

    path: str
    device: dict
    runtime: str
    runtime_name: str
    runtime_version: str | None
    threads: int
    complete: bool
    items: list
    calibration: dict  # {set, precision} of the calibration networks it carried, if any
    wall_s: float = 0.0

    @property
    def label(self) -> str:
        d = self.device
        cores = f"{d.get('cores')} cores" + (f", {d['max_mhz']} MHz" if d.get("max_mhz") else "")
        return (f"{d.get('cpu')} ({d.get('machine')}, {cores}), {self.runtime_name} {self.runtime_version}, "
                f"{self.threads} thread(s)")

    def artifact(self, sha256: str) -> dict | None:
        return next((i for i in self.items if i.get("kind") == "artifact" and i.get("sha256") == sha256), None)

    def networks(self) -> list[dict]:
        """The calibration networks as the latency model fits them: [{name, kernels: [record + us], measured_ms}]."""
        kernels: dict[str, list] = {}
        for i in self.items:
            if i.get("kind") == "kernel":
                name = i["id"].split(":")[1]
                kernels.setdefault(name, []).append({**i["record"], "us": i["p50_ms"] * 1000})
        out = []
        for i in self.items:
            if i.get("kind") == "network":
                ks = i.get("kernels") if self.runtime == "onnxruntime" else kernels.get(i["name"], [])
                if ks:
                    out.append({"name": i["name"], "kernels": ks, "measured_ms": i["p50_ms"]})
        return out


def load_results(path: str | Path) -> OnTarget:
    """A probe's results file, checked: readable JSON, the results schema, a runtime edgefit knows."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p} not found; run probe.py on the device with --out {p.name} and copy the file back")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{p} is not readable JSON ({str(e)[:80]}): truncated in the copy? copy it again from the "
                       "device") from None
    if not isinstance(d, dict) or d.get("schema") != RESULTS_SCHEMA:
        raise BadInput(f"{p} is not a probe results file (schema {RESULTS_SCHEMA}); give the file probe.py wrote")
    rt = d.get("runtime") or {}
    kind = rt.get("kind") or PACKAGE_RUNTIME.get(rt.get("name"))
    if kind not in PROFILED_RUNTIMES or not isinstance(d.get("items"), list):
        raise BadInput(f"{p}: runtime {rt.get('name')!r} or its items are not what probe.py writes; run it again")
    if kind == "litert" and "feed" not in (d.get("protocol") or {}):
        raise BadInput(f"{p} was measured by an older probe.py, which timed LiteRT models without setting their "
                       "input (3-4% faster than edgefit bench); write the probe folder again with `edgefit probe` "
                       "and run its probe.py")
    return OnTarget(str(p), d.get("device") or {}, kind, rt.get("name", kind), rt.get("version"),
                    int(d.get("threads") or 1), bool(d.get("complete")), d["items"], d.get("calibration") or {},
                    float(d.get("wall_s") or 0.0))


def matched(results: OnTarget, paths: list[Path]) -> dict[str, dict]:
    """{path: the results item of that file}, matched by sha256; a results file that measured none of `paths` is
    bad input (it is about other files)."""
    found = {}
    for path in paths:
        item = results.artifact(file_sha256(path))
        if item is not None:
            found[str(path)] = item
    if not found:
        names = ", ".join(Path(i["file"]).name for i in results.items if i.get("kind") == "artifact") or "none"
        raise BadInput(f"--on-target {results.path} measured no file given here (no sha256 matches; it measured "
                       f"{names}); give the artifacts that went into the probe folder")
    return found
