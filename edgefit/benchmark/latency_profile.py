"""Device latency profiles: `edgefit calibrate --profile FILE` samples kernels on the target, fits the
latency model (latency_model.py) and writes it with where and how it was measured; a budget names it with
`latency_profile: FILE` and every latency prediction that can use it does (costs.predict_latency).

What a prediction needs is the network's kernel list in the profile's runtime and precision: for
onnxruntime one profiled run on the host enumerates its optimized graph (kernels.py; its times are not used);
for LiteRT the TFLite flatbuffer lists them (tflite_kernels.py), so a zoo variant or a pruned network is first
converted as export converts it (onnx2tf, 10-30 s each; zoo variants are cached).
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput
from ..paths import cache_dir
from ..vocabulary import PROFILED_PRECISIONS as PRECISIONS
from ..vocabulary import PROFILED_RUNTIMES as RUNTIMES
from .zoo_graph import network, noise, variant_graph

SCHEMA = "edgefit-latency-profile/1"
MODEL_VERSION = 2  # the latency model's features (2: log features, linear leaves); another version is stale
MIN_NETWORKS = 6
HOLDOUT_EVERY = 5  # every 5th sampled network is held out to report the fit quality
# every PRUNED_EVERY-th calibration network is its variant with channels pruned (alternately these ratios, as the
# search prunes: up to half), so the fit sees the channel counts of pruned networks, not only the zoo's
PRUNED_EVERY = 3
PRUNED_RATIOS = (0.25, 0.5)


def list_kernels(blob: bytes, runtime: str, threads: int, resolution: int) -> list[dict]:
    """The kernel list of a deployed network (times not used)."""
    if runtime == "litert":
        from .tflite_kernels import kernels_of

        return kernels_of(blob)
    from .kernels import kernels_of

    return kernels_of(blob, noise((1, 3, resolution, resolution)), threads)


def sample_network(blob: bytes, runtime: str, threads: int, resolution: int) -> tuple[list[dict], float]:
    """(timed kernels, the network's measured ms) on this host."""
    if runtime == "litert":
        from .tflite_kernels import profile_network

        return profile_network(blob, threads)
    from .kernels import profile_network

    return profile_network(blob, noise((1, 3, resolution, resolution)), threads)


def network_ms(blob: bytes, runtime: str, threads: int, resolution: int) -> float:
    """The deployed network's latency on this host, timed whole (no profiler), median of three sessions."""
    if runtime == "litert":
        from .tflite_kernels import network_ms as tflite_ms

        return tflite_ms(blob, threads)
    from .kernels import network_ms as onnx_ms

    return onnx_ms(blob, noise((1, 3, resolution, resolution)), threads)


@dataclass(frozen=True)
class CalibrationNetwork:
    """One network a profile is fitted on: a zoo variant, `prune` of its channels removed (0: as the zoo has it)."""

    variant: object
    prune: float = 0.0

    @property
    def name(self) -> str:
        return self.variant.name + (f".pruned{self.prune:g}" if self.prune else "")

    @property
    def resolution(self) -> int:
        return self.variant.resolution

    def graph(self, precision: str, runtime: str, num_classes: int = 1000) -> bytes:
        return variant_graph(self.variant, num_classes, precision, runtime, self.prune)


def calibration_networks(exclude: tuple[str, ...] = ()) -> list[CalibrationNetwork]:
    """The networks calibrate and the probe's calibration set sample, in their seeded order: the zoo variants not
    in `exclude`, every PRUNED_EVERY-th of them pruned."""
    from .. import zoo

    left_out = set(exclude)
    pool = [v for v in zoo.variants() if v.name not in left_out]
    random.Random(0).shuffle(pool)
    return [CalibrationNetwork(v, PRUNED_RATIOS[(i // PRUNED_EVERY) % len(PRUNED_RATIOS)]
                               if i % PRUNED_EVERY == PRUNED_EVERY - 1 else 0.0) for i, v in enumerate(pool)]


def calibrate_profile(runtime: str = "onnxruntime", precision: str = "fp32", threads: int = 1,
                      budget_minutes: float = 10.0, exclude: tuple[str, ...] = (), progress=None) -> dict:
    """Sample zoo networks (not `exclude`) in a seeded random order until `budget_minutes` is nearly spent,
    fit, and return the profile. The fit quality is measured on every HOLDOUT_EVERY-th sampled network,
    held out of a first fit; the stored model is then fitted on all of them."""
    from .. import zoo
    from . import machine

    if runtime not in RUNTIMES:
        raise BadInput(f"--runtime {runtime}: latency profiles sample {' or '.join(RUNTIMES)} kernels")
    if precision not in PRECISIONS:
        raise BadInput(f"--precision {precision}: choose {' or '.join(PRECISIONS)}")
    if threads < 1:
        raise BadInput("--threads must be 1 or more: a profile is for one thread count")
    for name in exclude:
        zoo.get_variant(name)  # an unknown name is bad input, with a suggestion
    pool = calibration_networks(exclude)
    t0, nets, first = time.perf_counter(), [], 0.0
    limit = budget_minutes * 60 * 0.9
    for v in pool:
        elapsed = time.perf_counter() - t0
        # the first network also pays one-time costs (imports, the first export and session): the estimate of
        # the next one's time leaves it out, and the minimum number of networks is sampled unless the whole
        # budget is already spent (a slow first network on a busy host stopped the sampling after one)
        per_net = (elapsed - first) / (len(nets) - 1) if len(nets) > 1 else first
        if nets and (elapsed + 2 * per_net > limit if len(nets) >= MIN_NETWORKS else elapsed > limit):
            break
        blob = v.graph(precision, runtime)
        kernels, ms = sample_network(blob, runtime, threads, v.resolution)
        nets.append({"name": v.name, "kernels": kernels, "measured_ms": ms})
        first = first or time.perf_counter() - t0
        if progress:
            progress(len(nets), len(pool), v.name)
    if len(nets) < MIN_NETWORKS:
        raise BadInput(f"--budget-minutes {budget_minutes}: only {len(nets)} networks sampled, {MIN_NETWORKS} "
                       "needed; give more minutes")
    return fitted_profile(nets, runtime, precision, threads, machine.info(), exclude, time.perf_counter() - t0)


def fitted_profile(nets: list[dict], runtime: str, precision: str, threads: int, device: dict,
                   exclude: tuple[str, ...] = (), wall_s: float = 0.0, measured_by: str = "edgefit calibrate") -> dict:
    """The profile of sampled networks ([{name, kernels: [record + us], measured_ms}], measured on `device`): the
    fit quality on every HOLDOUT_EVERY-th network held out of a first fit, then the model fitted on all."""
    from .latency_model import fit, predict_ms, stored

    held = nets[::HOLDOUT_EVERY]
    first = fit([n for i, n in enumerate(nets) if i % HOLDOUT_EVERY])
    errors = [predict_ms(first, n["kernels"]) / n["measured_ms"] - 1 for n in held]
    model = fit(nets)
    return {"schema": SCHEMA, "model_version": MODEL_VERSION, "runtime": runtime, "precision": precision,
            "threads": threads, "device": device, "measured_by": measured_by, "networks": [n["name"] for n in nets],
            "excluded": list(exclude), "samples": sum(len(n["kernels"]) for n in nets),
            "fit_quality": {"held_out_networks": [n["name"] for n in held],
                            "share_within_10pct": round(sum(abs(e) <= 0.1 for e in errors) / len(errors), 4),
                            "median_abs_error": round(sorted(abs(e) for e in errors)[len(errors) // 2], 4)},
            "wall_s": round(wall_s, 1), "model": stored(model)}


def profile_from_results(path: str | Path) -> dict:
    """A profile fitted, as calibrate --profile fits, on what a probe measured on the device (calibrate --from)."""
    from .on_target import load_results

    r = load_results(path)
    nets = r.networks()
    if len(nets) < MIN_NETWORKS:
        raise BadInput(f"--from {path}: {len(nets)} calibration networks measured, {MIN_NETWORKS} needed; probe with "
                       "--calibration-set small or full (and let probe.py finish: rerun it to continue)")
    precision = r.calibration.get("precision") or ("int8" if r.runtime == "litert" else "fp32")
    device = {**r.device, "runtime": r.runtime_name, "runtime_version": r.runtime_version}
    return fitted_profile(nets, r.runtime, precision, r.threads, device, wall_s=r.wall_s,
                          measured_by=f"probe.py ({Path(path).name}{'' if r.complete else ', incomplete'})")


@dataclass(frozen=True)
class Graph:
    """A network as a runtime executes it: the kernel list (kernels.py, tflite_kernels.py) a latency profile sums."""

    runtime: str
    precision: str
    kernels: list | None


@dataclass(frozen=True)
class Profile:
    path: str
    runtime: str
    precision: str
    threads: int
    data: dict

    def covers(self, runtime: str, precision: str) -> bool:
        return runtime == self.runtime and precision == self.precision

    def applies_to(self, graph) -> bool:
        """Whether it predicts the Graph `graph`: a kernel list in its own runtime and precision."""
        return graph is not None and bool(graph.kernels) and self.covers(graph.runtime, graph.precision)

    def predict_ms(self, kernels: list[dict]) -> float:
        from .latency_model import predict_ms

        return predict_ms(self.data["model"], kernels)  # the parsed booster is kept on it (one parse per load)

    @property
    def label(self) -> str:
        return f"latency profile {Path(self.path).name} ({self.runtime} {self.precision}, {self.threads} thread(s))"


_LOADED: dict[str, Profile] = {}


def load_profile(path: str | Path) -> Profile:
    """A profile file, checked: present, a profile, this model version, a runtime it can serve."""
    key = str(Path(path).resolve())
    if key in _LOADED:
        return _LOADED[key]
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"latency_profile: {p} not found; write one with `edgefit calibrate --profile {p.name}` "
                       "on the target, or remove the key")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"latency_profile: {p} is not readable JSON ({e}); write it again with edgefit calibrate") \
            from None
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        raise BadInput(f"latency_profile: {p} is not a latency profile (schema {SCHEMA}); write one with "
                       "`edgefit calibrate --profile FILE`")
    if d.get("model_version") != MODEL_VERSION:
        raise BadInput(f"latency_profile: {p} is stale (latency model version {d.get('model_version')}, this "
                       f"edgefit reads {MODEL_VERSION}); run `edgefit calibrate --profile` on the target again")
    if d.get("runtime") not in RUNTIMES or d.get("precision") not in PRECISIONS:
        raise BadInput(f"latency_profile: {p} is for runtime {d.get('runtime')!r} precision "
                       f"{d.get('precision')!r}; edgefit predicts with {', '.join(RUNTIMES)} fp32/int8 profiles")
    prof = Profile(str(p), d["runtime"], d["precision"], int(d["threads"]), d)
    _LOADED[key] = prof
    return prof


def artifact_graph(path: Path, precision: str | None, prof: Profile):
    """The Graph of an ONNX artifact: its kernel list from one profiled run at its own input shape (a
    dynamic batch runs at 1; other dynamic dimensions: no list, never a made-up shape). `precision`: the
    manifest's, else int8 when the graph quantizes."""
    import onnx

    from .kernels import kernels_of

    blob = Path(path).read_bytes()
    proto = onnx.load_from_string(blob)
    if precision is None:
        precision = "int8" if any(n.op_type == "QuantizeLinear" for n in proto.graph.node) else "fp32"
    if not prof.covers("onnxruntime", precision):
        return Graph("onnxruntime", precision, None)
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    if any(d < 1 for d in dims[1:]):
        return Graph("onnxruntime", precision, [])
    dims = [max(dims[0], 1), *dims[1:]]
    return Graph("onnxruntime", precision,
                 kernels_of(blob, noise(dims), prof.threads))


def tflite_graph(path: Path, precision: str | None, prof: Profile):
    """The Graph of a TFLite artifact: its kernel list read from the flatbuffer. `precision`: the
    manifest's, else int8 when the file name says so."""
    from .tflite_kernels import kernels_of

    precision = precision or ("int8" if "int8" in Path(path).name else "fp32")
    if not prof.covers("litert", precision):
        return Graph("litert", precision, None)
    return Graph("litert", precision, kernels_of(Path(path).read_bytes()))


def zoo_graphs(variants, num_classes: int, precision: str, prof: Profile, progress=None) -> dict:
    """{variant name: Graph} of `variants` deployed at `precision`: with no kernel list when the profile
    is for another precision (the figure then says so), else the kernel lists from the cache in edgefit's
    cache folder or listed now (one export per variant: onnxruntime ~1-3 s, LiteRT 10-30 s through onnx2tf)."""
    from importlib import metadata

    from ..fsutil import atomic_write_json

    if not prof.covers(prof.runtime, precision):
        return {v.name: Graph(prof.runtime, precision, None) for v in variants}

    lib = (f"tf{metadata.version('tensorflow')}-onnx2tf{metadata.version('onnx2tf')}" if prof.runtime == "litert"
           else f"ort{metadata.version('onnxruntime')}")
    path = cache_dir() / f"kernels-{prof.runtime}-{prof.precision}-{num_classes}c-{lib}.json"
    cached = {}
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
        except ValueError:
            cached = {}  # damaged: listed again below
    missing = [v for v in variants if v.name not in cached]
    for i, v in enumerate(missing):
        if progress:
            progress(i, len(missing), f"kernels of {v.name}")
        blob = variant_graph(v, num_classes, prof.precision, prof.runtime)
        cached[v.name] = list_kernels(blob, prof.runtime, prof.threads, v.resolution)
        try:
            atomic_write_json(path, cached)  # after each: a long LiteRT listing that is cut off is not lost
        except OSError:
            pass  # a read-only cache is slower, not wrong
    return {v.name: Graph(prof.runtime, prof.precision, cached[v.name]) for v in variants}


def model_graph(model, resolution: int, budget):
    """The Graph of a torch network (e.g. a pruned one, which no cache holds) deployed at the budget's
    precision, for its latency profile: None without a profile. One export and one kernel listing (onnxruntime
    ~1-3 s; LiteRT 10-30 s through onnx2tf)."""

    from ..precision import Precision

    if not budget.latency_profile:
        return None
    prof = load_profile(budget.latency_profile)
    precision = Precision.parse(budget.precision).value
    if not prof.covers(prof.runtime, precision):
        return Graph(prof.runtime, precision, None)
    blob = network(model, resolution, precision, prof.runtime)
    return Graph(prof.runtime, precision, list_kernels(blob, prof.runtime, prof.threads, resolution))


def graph_for(path: Path, runtime: str, precision: str | None, budget):
    """The Graph of an artifact for the budget's latency profile: None without a profile; a Graph with
    no kernels (the figure says why the profile did not apply) for another runtime."""
    if not budget.latency_profile:
        return None
    prof = load_profile(budget.latency_profile)
    if runtime == "litert":
        return tflite_graph(Path(path), precision, prof)
    if runtime != "onnxruntime":
        return Graph(runtime, precision or ("int8" if "int8" in Path(path).name else "fp32"), None)
    return artifact_graph(Path(path), precision, prof)
