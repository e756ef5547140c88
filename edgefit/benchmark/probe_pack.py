"""`edgefit probe`: a self-contained folder to copy onto the target device and time there with probe.py.

The folder holds the artifacts to time (with a few bundled inputs and the host's outputs on them, so the device's
top-1 agreement with the host is measured too), optionally a calibration set (the zoo networks, some pruned, that
`calibrate --profile` fits on, deployed as export deploys them, and for LiteRT each one's kernels cut out of its
own flatbuffer, with their feature records), `probe.json` listing every file with its sha256, a README and
`probe.py` (device/probe.py, verbatim: numpy and the one runtime, nothing else).

    from edgefit.benchmark.probe_pack import pack
    folder = pack(["runs/demo-build/artifacts"], "probe-pi", runtime="litert", calibration="small")
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, zoo
from ..costs import zoo_stats
from ..device import probe as device_probe
from ..errors import BadInput
from ..fsutil import staged
from ..record import Record
from ..runtimes import manifest_entry, runner
from ..vocabulary import SUFFIX_OF as RUNTIMES
from .latency_profile import MIN_NETWORKS, calibration_networks
from .tflite_kernels import cut_kernels
from .zoo_graph import noise

CALIBRATION_SETS = ("none", "small", "full")
SMALL_NETWORKS = 12  # the small set: this many zoo networks (seeded order), within SMALL_MB
SMALL_MB = 45.0
# written size / the weights estimate below: int32 biases, scales and per-kernel flatbuffers on top of the weights
# (the small LiteRT int8 set of 12 networks: 49.3 MB written for a 43.3 MB estimate, 1.14)
OVERHEAD = 1.15
AGREEMENT_IMAGES = 8
PROTOCOL = {**device_probe.PROTOCOL, "artifact_seconds": 1.0, "network_seconds": 1.0, "kernel_seconds": 0.03}


@dataclass(frozen=True)
class ProbeFolder(Record):
    """What `pack` wrote: where, for which runtime, the artifacts and the calibration networks, and its size."""

    directory: str
    runtime: str
    threads: int | None
    artifacts: list[str]
    networks: list[str] = field(default_factory=list)
    kernels: int = 0
    size_bytes: int = 0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifacts_of(paths: list[str], runtime: str) -> list[Path]:
    """The model files to time: each path is an artifact file, or an export folder (its files of the runtime)."""
    suffix = RUNTIMES[runtime]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix == suffix)
            if not found:
                raise BadInput(f"{p} holds no {suffix} file for --runtime {runtime}")
            out += found
        elif p.is_file():
            if p.suffix != suffix:
                raise BadInput(f"{p} is not a {suffix} file; --runtime {runtime} times {suffix} files")
            out.append(p)
        else:
            raise BadInput(f"{p} not found; give export folders or artifact files")
    return out


def _inputs(path: Path):
    """A few preprocessed images for the agreement check: the export's parity images when its run is at hand,
    else seeded noise of the artifact's input shape (the same function is compared either way)."""
    import numpy as np

    from .. import checkpoint
    from ..data.images import split_images

    meta = manifest_entry(path) or {}
    mf = path.parent / "edgefit.json"
    if meta and mf.is_file():
        m = json.loads(mf.read_text())
        run_dir = (m.get("source") or {}).get("run_dir")
        ref = path.parent / m.get("reference_checkpoint", "reference.pt")
        if run_dir and Path(run_dir, "split.json").is_file() and ref.is_file():
            src = checkpoint.Source(ref, checkpoint.load(ref), Path(run_dir))
            x = split_images(src, "val", None, AGREEMENT_IMAGES).x.numpy().astype(np.float32)
            return x, f"{len(x)} validation images of the training run"
    shape = list((meta.get("input") or {}).get("shape") or [])
    if len(shape) != 4:
        r = runner(path)
        shape = list(getattr(r, "inp", {}).get("shape", [])) or [d if isinstance(d, int) else 1
                                                                 for d in r.input.shape]
    if (meta.get("input_layout") or ("NHWC" if shape[-1] in (1, 3) else "NCHW")) == "NHWC":
        shape = [shape[0], shape[3], shape[1], shape[2]]
    return noise([AGREEMENT_IMAGES, *shape[1:]]), f"{AGREEMENT_IMAGES} seeded noise inputs"


def _networks(runtime: str, precision: str, calibration: str, count: int | None, exclude: tuple[str, ...]):
    """The calibration networks (latency_profile.calibration_networks, calibrate --profile's seeded order): all of
    them (full), else the first `count` (default SMALL_NETWORKS) whose files (weights at the precision's width, a
    pruned one's as if unpruned; a LiteRT network twice: whole and cut into kernels) keep the small set within
    SMALL_MB, none over a (MIN_NETWORKS - 1)-th of it."""
    pool = calibration_networks(exclude)
    if calibration == "full" and count is None:
        return pool
    stats = zoo_stats(1000)
    width = (1 if precision == "int8" else 4) * (2 if runtime == "litert" else 1) * OVERHEAD
    chosen, size = [], 0.0
    for n in pool:
        mb = stats[n.variant.name]["weight_elems"] * width / 2**20
        if calibration == "small" and (size + mb > SMALL_MB or mb > SMALL_MB / (MIN_NETWORKS - 1)):
            continue  # one large network would crowd out the rest
        chosen.append(n)
        size += mb
        if len(chosen) == (count or SMALL_NETWORKS):
            break
    return chosen


def pack(paths: list[str], out: str | Path, runtime: str = "litert", calibration: str = "none",
         threads: int | None = None, precision: str | None = None, networks: int | None = None,
         exclude: tuple[str, ...] = (), progress=None) -> ProbeFolder:
    """Write the probe folder `out` for `paths` (export folders or artifact files; may be empty with a
    calibration set) timed on `runtime`. `calibration`: none | small (SMALL_NETWORKS networks, at most SMALL_MB) |
    full (every zoo variant not in `exclude`); `networks` sets the count; `precision` the networks' (default
    int8 for LiteRT, fp32 for onnxruntime); `threads`: the device's default thread count (None: all its cores)."""
    if runtime not in RUNTIMES:
        raise BadInput(f"--runtime {runtime}: the probe times {' or '.join(RUNTIMES)}")
    if calibration not in CALIBRATION_SETS:
        raise BadInput(f"--calibration-set {calibration}: choose {', '.join(CALIBRATION_SETS)}")
    if threads is not None and threads < 1:
        raise BadInput("--threads must be 1 or more")
    precision = precision or ("int8" if runtime == "litert" else "fp32")
    if precision not in ("fp32", "int8"):
        raise BadInput(f"--precision {precision}: calibration networks are fp32 or int8")
    if networks is not None and networks < MIN_NETWORKS:
        raise BadInput(f"--calibration-networks {networks}: a profile is fitted on {MIN_NETWORKS} networks or more")
    for name in exclude:
        zoo.get_variant(name)
    files = artifacts_of(paths, runtime)
    if not files and calibration == "none":
        raise BadInput("nothing to probe: give export folders or artifacts, or --calibration-set small|full")
    nets = _networks(runtime, precision, calibration, networks, exclude) if calibration != "none" else []
    if calibration == "small" and len(nets) < MIN_NETWORKS:
        raise BadInput(f"--calibration-set small: only {len(nets)} {runtime} {precision} networks fit in "
                       f"{SMALL_MB:g} MB, and a profile is fitted on {MIN_NETWORKS} or more; use --precision int8 "
                       "or --calibration-set full")
    out = Path(out)
    t0 = time.perf_counter()
    with staged(out) as folder:
        arts = [_pack_artifact(i, p, folder) for i, p in enumerate(files)]
        cal = None
        if calibration != "none":
            cal = {"set": calibration, "precision": precision, "networks": []}
            for i, v in enumerate(nets):
                if progress:
                    progress(i, len(nets), v.name)
                cal["networks"].append(_pack_network(v, runtime, precision, folder))
        probe = {"schema": device_probe.PROBE_SCHEMA, "edgefit_version": __version__,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "runtime": runtime, "threads": threads,
                 "protocol": PROTOCOL, "artifacts": arts, "calibration": cal, "pack_s": 0.0}
        probe["pack_s"] = round(time.perf_counter() - t0, 1)
        (folder / "probe.json").write_text(json.dumps(probe, indent=1) + "\n")
        shutil.copyfile(device_probe.__file__, folder / "probe.py")
        (folder / "README.md").write_text(readme(probe))
        total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    nets = [n["name"] for n in (cal or {}).get("networks", [])]
    return ProbeFolder(str(out), runtime, threads, [a["source"] for a in arts], nets,
                       sum(len(n.get("kernels", [])) for n in (cal or {}).get("networks", [])), total)


def _pack_artifact(i: int, path: Path, folder: Path) -> dict:
    import numpy as np

    data = path.read_bytes()
    rel = f"models/{i}-{path.name}"
    (folder / "models").mkdir(exist_ok=True)
    (folder / rel).write_bytes(data)
    meta = manifest_entry(path) or {}
    x, where = _inputs(path)
    y = runner(path, meta=meta or None)(x)
    (folder / "inputs").mkdir(exist_ok=True)
    np.save(folder / f"inputs/{i}-x.npy", x, allow_pickle=False)
    np.save(folder / f"inputs/{i}-host.npy", y, allow_pickle=False)
    layout = meta.get("input_layout") or ("NHWC" if path.suffix == ".tflite" else "NCHW")
    return {"id": f"artifact:{i}:{path.name}", "kind": "artifact", "name": path.name, "file": rel,
            "sha256": _sha(data), "source": str(path.resolve()), "precision": meta.get("precision"),
            "layout": layout, "inputs": f"inputs/{i}-x.npy", "expected": f"inputs/{i}-host.npy",
            "inputs_from": where}


def _pack_network(v, runtime: str, precision: str, folder: Path) -> dict:
    """One calibration network (a latency_profile.CalibrationNetwork; for LiteRT with its cut-out kernels and their
    records)."""
    blob = v.graph(precision, runtime)
    d = folder / "calibration" / v.name
    d.mkdir(parents=True)
    rel = f"calibration/{v.name}/network{RUNTIMES[runtime]}"
    (folder / rel).write_bytes(blob)
    entry = {"id": f"network:{v.name}", "kind": "network", "name": v.name, "file": rel, "sha256": _sha(blob),
             "resolution": v.resolution, "kernels": []}
    if runtime == "litert":
        for j, (record, kblob) in enumerate(cut_kernels(blob)):
            krel = f"calibration/{v.name}/k{j:03d}.tflite"
            (folder / krel).write_bytes(kblob)
            entry["kernels"].append({"id": f"kernel:{v.name}:{j}", "kind": "kernel", "file": krel,
                                     "sha256": _sha(kblob), "network": v.name, "record": record})
    return entry


def readme(probe: dict) -> str:
    pkg = ("numpy ai-edge-litert      # 32-bit ARM (armv7l): pip install numpy tflite-runtime"
           if probe["runtime"] == "litert" else "numpy onnxruntime")
    cal = probe["calibration"]
    what = [f"- {len(probe['artifacts'])} artifact(s): " + ", ".join(a["name"] for a in probe["artifacts"])]
    if cal:
        what.append(f"- a calibration set ({cal['set']}, {cal['precision']}): {len(cal['networks'])} zoo networks"
                    " (some pruned)"
                    + (f" and {sum(len(n['kernels']) for n in cal['networks'])} kernels cut out of them"
                       if probe["runtime"] == "litert" else " (kernels timed by onnxruntime's profiler)"))
    return f"""# edgefit probe folder ({probe['runtime']})

{chr(10).join(what)}

## On the device

```
pip install {pkg}
python3 probe.py --out results.json            # --threads N (default: {probe['threads'] or 'all cores'}), --minutes M
```

probe.py imports only numpy and the runtime. It prints progress and an ETA on stderr, rewrites results.json
after every group, and continues where it stopped when run again with the same --out (exit 0 complete, 1
stopped early by --minutes, 2 a problem it names in one line).

## Back on the host

```
edgefit bench ARTIFACT --budget BUDGET --on-target results.json   # target_fps measured on the device
edgefit calibrate --from results.json --profile device.json       # a latency profile of the device
```

results.json (schema `edgefit-probe-results/1`): `device` (cpu, machine, cores, usable_cores, governor, cur_mhz,
max_mhz, memory_mb, os, python), `runtime` (name, version, delegate/provider), `threads`, `protocol` (warm-up,
rounds, minimum runs and seconds, `feed`: a whole model's run sets its input), `complete`, `wall_s`, `peak_rss_mb`,
and `items`: per file its `id`, `kind` (artifact | network | kernel), `sha256`, `load_ms`, `first_ms`, `runs`,
`p50_ms`, `min_ms`, `p5_ms`..`p99_ms`, `mean_ms`, `std_ms`, `round_p50_ms` and `spread` (how far the rounds
disagree), `samples_ms` (artifacts and networks), `agreement` (artifacts: top-1 agreement and max relative error
against the host's outputs on the bundled inputs), `kernels` (onnxruntime networks: each kernel's time from the
profiler) or `record` (LiteRT kernels: the features the latency model reads).
"""
