"""The candidate search of `edgefit build --search K`: which of the K best-predicted variants learns the
user's data best.

Both executors run successive halving on validation top-1. Every candidate trains on the schedule of the longest
run (`--search-epochs`, default `--epochs`), so an epoch means the same in every run; after `grace` epochs (default
a quarter of that, at least 2) only the best 1/reduction_factor go on, at each rung (grace, grace x factor, ...),
until one is left or the longest run is reached. The compute goes to the promising candidates, the ranking rests on
longer runs, and when the longest run is `--epochs` the last candidate standing has run the final training itself
(the build keeps that run instead of training it again).

- `local` (default): one run at a time; a run stopped at a rung is resumed from its last epoch if it goes on.
- `ray`: every candidate is a Ray Tune trial under an ASHA (asynchronous successive halving) scheduler. Without
  an address edgefit starts a local Ray instance (the machine's CPUs) and stops it; with one, the trials run on
  that cluster (which must see the data folder and the build directory at the same paths). Ray is optional:
  `pip install 'edgefit[ray]'`.

Measured (bench/search_quality.py; six candidates from scratch): ranking on the full-length schedule at a rung
and equal short runs with their own schedules ranked within a few validation images of each other on three data
sets not tuned on; halving saves the final training (docs/internals.md has the figures).

A candidate is one of select's dicts: a variant that fits as it is, or a larger one pruned to fit
(`variant`, `prune_ratio`; joint.py), trained with `edgefit train --prune`. Both executors return the same
trials: name, variant, prune ratio, precision, epochs, the validation curve, the best validation top-1 and
why the trial stopped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput
from .joint import variant_of

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class SearchOptions:
    executor: str = "local"
    address: str | None = None  # a running Ray cluster (ray://host:10001 or host:6379); None: start one here
    grace_period: int | None = None  # epochs every trial gets before it may be stopped; None: see `rungs`
    reduction_factor: int = 2  # at each rung the best 1/reduction_factor go on
    max_epochs: int | None = None  # a trial's longest run (ASHA's max_t); None: the build's --epochs
    cpus_per_trial: int = 1

    def validate(self) -> None:
        if self.executor not in EXECUTORS:
            raise BadInput(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.address and self.executor != "ray":
            raise BadInput("--address names a Ray cluster; it needs --executor ray")
        if (self.grace_period is not None and self.grace_period < 1) or self.reduction_factor < 2 \
                or self.cpus_per_trial < 1 or (self.max_epochs is not None and self.max_epochs < 1):
            raise BadInput("--asha-grace and --search-epochs must be 1 or more, --asha-reduction 2 or more, "
                           "--cpus-per-trial 1 or more")
        if self.max_epochs is not None and self.grace_period is not None and self.max_epochs < self.grace_period:
            raise BadInput(f"--search-epochs {self.max_epochs} is below the grace period {self.grace_period}")
        if self.executor == "ray":
            import_ray()

    def rungs(self, epochs: int) -> tuple[int, int]:
        """(grace, longest run) for a build of `epochs`: the longest run is --search-epochs or --epochs; the
        grace a quarter of it, at least 2 (the equal short runs' length before; a grace of 1 ranks on
        first-epoch noise: bench/results/search_quality_grace1.json), at most the longest run."""
        max_t = self.max_epochs or epochs
        return min(max_t, self.grace_period or max(2, max_t // 4)), max_t

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def import_ray():
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise BadInput("--executor ray needs Ray Tune, an optional extra: pip install 'edgefit[ray]' "
                       "(or pip install 'ray[tune]'); or use --executor local") from None
    return ray


def trial(c: dict, precision: str, curve: list[float], stopped_because: str, run_dir: str) -> dict:
    variant, prune = variant_of(c)
    return {"name": c["name"], "variant": variant, "prune_ratio": prune, "precision": precision, "epochs": len(curve),
            "val_top1": max(curve) if curve else 0.0, "curve": [round(v, 4) for v in curve],
            "stopped_because": stopped_because, "run_dir": run_dir}


class _Paused(Exception):
    """A local search run that reached its rung (it is resumed from last.pt if it goes on)."""


def _curve(run_dir: Path) -> list[float]:
    import json

    metrics = run_dir / "metrics.jsonl"
    return [json.loads(line)["val_top1"] for line in metrics.read_text().splitlines()] if metrics.is_file() else []


def run_local(pool: list[dict], split, opts, precision: str, root: Path, quiet: bool, say) -> list[dict]:
    """Successive halving, one run at a time, every run on the longest run's schedule; a run stopped at a rung
    resumes from its last epoch when it goes on, and an interrupted search continues where it stopped."""
    import copy
    import math

    from ..train import train
    from .runs import fresh, train_config

    so = opts.search_options
    grace, max_t = so.rungs(opts.epochs)

    def advance(c: dict, upto: int) -> None:
        run_dir = root / c["name"]
        done = len(_curve(run_dir))
        if (run_dir / "summary.json").is_file() or done >= upto:
            return
        resume = (run_dir / "last.pt").is_file()
        say(f"[search] {c['name']}: epochs {done + 1 if resume else 1}-{upto} of {max_t}")

        def pause(m: dict) -> None:
            if upto < max_t and m["epoch"] >= upto and not m["stopped_early"]:
                raise _Paused

        variant, prune = variant_of(c)
        cfg = train_config(variant, split, opts, run_dir if resume else fresh(run_dir), max_t, prune)
        try:
            train(cfg, resume=resume, quiet=quiet, split=copy.deepcopy(split), on_epoch=pause)
        except _Paused:
            pass

    alive, rung, why = list(pool), grace, {}
    while True:
        for c in alive:
            advance(c, rung)
        if rung >= max_t:
            break
        best = {c["name"]: max(_curve(root / c["name"])[:rung], default=0.0) for c in alive}
        keep = math.ceil(len(alive) / so.reduction_factor)
        ranked = sorted(alive, key=lambda c: -best[c["name"]])  # ties: select's order
        for c in ranked[keep:]:
            why[c["name"]] = (f"stopped after {rung} epoch(s) by successive halving: not in the best "
                              f"1/{so.reduction_factor} at that rung")
        alive = ranked[:keep]
        rung = max_t if len(alive) == 1 else min(max_t, rung * so.reduction_factor)  # the last one: to the end
    out = []
    for c in pool:
        curve = _curve(root / c["name"])
        if c["name"] not in why:
            why[c["name"]] = (f"ran all {max_t} epochs" if len(curve) >= max_t else
                              "early stop: no better validation top-1 for the patience")
        out.append(trial(c, precision, curve, why[c["name"]], str(root / c["name"])))
    return out


def _ray_trial(config: dict) -> None:
    """One candidate in a Ray worker: train, reporting validation top-1 after every epoch to the scheduler."""
    import torch
    from ray import tune

    from ..data.folder import Split
    from ..train import TrainConfig, train
    from .runs import fresh

    torch.set_num_threads(config["threads"])
    cfg = TrainConfig(**config["train"])
    fresh(Path(cfg.out))

    def report(m: dict) -> None:
        tune.report({"val_top1": m["val_top1"], "epoch": m["epoch"], "train_loss": m["train_loss"],
                     "stopped_early": m["stopped_early"]})

    train(cfg, quiet=True, split=Split.from_dict(config["split"]), on_epoch=report)


def run_ray(pool: list[dict], split, opts, so: SearchOptions, precision: str, root: Path, say) -> list[dict]:
    """The candidates as Ray Tune trials under ASHA; returns every trial, best first not implied."""
    import shutil

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline first: no usage report to Ray's servers
    ray = import_ray()
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from ..benchmark.machine import usable_cpus
    from .runs import train_config

    names = [c["name"] for c in pool]
    grace, max_t = so.rungs(opts.epochs)
    started = not ray.is_initialized()
    if started:
        if so.address:
            ray.init(address=so.address, log_to_driver=False)
        else:
            ray.init(num_cpus=usable_cpus(), include_dashboard=False, log_to_driver=False,
                     object_store_memory=200 * 1024 ** 2)
    try:
        say(f"[search] {len(names)} candidates on Ray Tune ({'cluster ' + so.address if so.address else 'local'}"
            f"), ASHA on validation top-1: grace {grace} epochs, reduction factor {so.reduction_factor}, "
            f"at most {max_t} epochs")
        storage = (root / "ray").resolve()
        shutil.rmtree(storage, ignore_errors=True)  # a search interrupted earlier starts again
        space = {"candidate": tune.grid_search(names)}
        configs = {}
        for c in pool:
            variant, prune = variant_of(c)
            configs[c["name"]] = {"threads": so.cpus_per_trial, "split": split.to_dict(), "train": train_config(
                variant, split, opts, (root / c["name"]).resolve(), max_t, prune).to_dict()}

        def trainable(config: dict) -> None:
            _ray_trial(configs[config["candidate"]])

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=grace,
                                  reduction_factor=so.reduction_factor)
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": so.cpus_per_trial}), param_space=space,
            tune_config=tune.TuneConfig(metric="val_top1", mode="max", scheduler=scheduler),
            run_config=tune.RunConfig(name="search", storage_path=str(storage), verbose=0))
        grid = tuner.fit()
        out = []
        for result in grid:
            name = result.config["candidate"]
            df = result.metrics_dataframe
            curve = [] if df is None or "val_top1" not in df else [float(v) for v in df["val_top1"]]
            last = result.metrics or {}
            if result.error is not None:
                why = f"failed: {str(result.error).strip().splitlines()[-1][:200]}"
            elif len(curve) >= max_t:
                why = f"ran all {max_t} epochs"
            elif last.get("stopped_early"):
                why = "early stop: no better validation top-1 for the patience"
            else:
                why = (f"stopped by ASHA after {len(curve)} epoch(s): not in the best 1/{so.reduction_factor} of the "
                       "trials at that rung")
            out.append(trial(pool[names.index(name)], precision, curve, why, str((root / name).resolve())))
        return sorted(out, key=lambda t: names.index(t["name"]))
    finally:
        if started:
            ray.shutdown()
