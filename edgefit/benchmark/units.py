"""What `edgefit bench` measures: MODEL arguments expanded into (file, runtime, device) units."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput
from ..vocabulary import RUNTIME_OF, RUNTIMES

DEVICES = ("cpu", "cuda")


@dataclass
class Unit:
    path: Path
    runtime: str
    meta: dict | None = None  # the artifact's entry in edgefit.json
    manifest: dict | None = None
    label: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def expand(models: list[str], runtimes: list[str]) -> list[Unit]:
    units: list[Unit] = []
    for m in models:
        p = Path(m)
        if not p.exists():
            raise BadInput(f"model not found: {p}")
        if p.is_dir():
            mf = p / "edgefit.json"
            if not mf.is_file():
                raise BadInput(f"{p} is a directory without edgefit.json; give .onnx/.tflite files or an export dir")
            manifest = json.loads(mf.read_text())
            for a in manifest["artifacts"]:
                units.append(Unit(p / a["file"], RUNTIME_OF[Path(a["file"]).suffix], a, manifest,
                                  f"{p.name}/{a['file']}"))
            ref = p / manifest.get("reference_checkpoint", "reference.pt")
            if ref.is_file():
                units.append(Unit(ref, "torch", None, manifest, f"{p.name}/{ref.name}"))
            continue
        runtime = RUNTIME_OF.get(p.suffix)
        if runtime is None:
            raise BadInput(f"{p}: unknown model type {p.suffix!r}; bench takes .onnx, .tflite, an edgefit checkpoint "
                           "(.pt) or an export directory")
        manifest = None
        if (p.parent / "edgefit.json").is_file():
            manifest = json.loads((p.parent / "edgefit.json").read_text())
        meta = next((a for a in (manifest or {}).get("artifacts", []) if a["file"] == p.name), None)
        units.append(Unit(p, runtime, meta, manifest, p.name))
    return [u for u in units if u.runtime in runtimes]


@dataclass(frozen=True)
class BenchOptions:
    """How to measure: which runtimes and devices, threads (0: the runtime's default), batch, the timing
    floor (at least `min_runs` runs and `min_seconds`), images for an accuracy line (`data`, `samples`),
    whether the host is the target, and a previous report to compare with (`baseline`)."""

    runtimes: tuple[str, ...] = RUNTIMES
    devices: tuple[str, ...] = ("cpu",)
    threads: int = 0
    batch: int = 1
    min_runs: int = 20
    min_seconds: float = 1.0
    data: str | None = None
    samples: int = 200
    host_is_target: bool = False
    baseline: str | None = None
    input_shape: tuple[int, ...] | None = None  # the shape to time a model with dynamic dimensions at
    on_target: str | None = None  # a probe's results file: target_fps judged by the latency measured on the device

    def validate(self) -> None:
        for r in self.runtimes:
            if r not in RUNTIMES:
                raise BadInput(f"--runtime: unknown '{r}'; choose from {', '.join(RUNTIMES)}")
        for d in self.devices:
            if d not in DEVICES:
                raise BadInput(f"--device: unknown '{d}'; choose from {', '.join(DEVICES)}")
        if self.batch < 1 or self.threads < 0:
            raise BadInput("--batch must be 1 or more and --threads 0 (runtime default) or more")
        if self.input_shape is not None and (not self.input_shape or min(self.input_shape) < 1):
            raise BadInput(f"--input-shape: every dimension must be 1 or more, got {self.input_shape}")
