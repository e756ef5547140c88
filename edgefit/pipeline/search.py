"""The candidate search of `edgefit build --search K`: which of the K best-predicted variants learns the
user's data best.

- `local` (default): one short run per candidate, one after another, all the same length.
- `ray`: every candidate is a Ray Tune trial under an ASHA (asynchronous successive halving) scheduler on
  validation top-1: all trials train `grace_period` epochs; at each rung (grace, grace x factor, ...) only
  the best 1/reduction_factor go on, up to `max_epochs`. The compute goes to the promising candidates and
  the ranking rests on longer runs. Without an address edgefit starts a local Ray instance (the machine's
  CPUs) and stops it; with one, the trials run on that cluster (which must see the data folder and the
  build directory at the same paths). Ray is optional: `pip install 'edgefit[ray]'`.

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
    grace_period: int = 2  # epochs every trial gets before ASHA may stop it
    reduction_factor: int = 2  # at each rung the best 1/reduction_factor go on
    max_epochs: int | None = None  # a trial's longest run (ASHA's max_t); None: the build's --epochs
    cpus_per_trial: int = 1

    def validate(self) -> None:
        if self.executor not in EXECUTORS:
            raise BadInput(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.address and self.executor != "ray":
            raise BadInput("--address names a Ray cluster; it needs --executor ray")
        if self.grace_period < 1 or self.reduction_factor < 2 or self.cpus_per_trial < 1:
            raise BadInput("--asha-grace must be 1 or more, --asha-reduction 2 or more, --cpus-per-trial 1 or more")
        if self.max_epochs is not None and self.max_epochs < self.grace_period:
            raise BadInput(f"--search-epochs {self.max_epochs} is below the ASHA grace period {self.grace_period}")
        if self.executor == "ray":
            import_ray()

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


def run_local(pool: list[dict], split, opts, precision: str, root: Path, quiet: bool, say) -> list[dict]:
    """One short run per candidate, in turn; a candidate finished in an interrupted search is not redone."""
    import copy
    import json

    from ..train import train
    from .runs import fresh, train_config

    epochs = opts.short_epochs
    out = []
    for c in pool:
        run_dir = root / c["name"]
        done = run_dir / "summary.json"
        if not done.is_file():
            say(f"[search] {c['name']}: {epochs} epochs")
            variant, prune = variant_of(c)
            train(train_config(variant, split, opts, fresh(run_dir), epochs, prune), quiet=quiet,
                  split=copy.deepcopy(split))
        s = json.loads(done.read_text())
        curve = [json.loads(line)["val_top1"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        why = "early stop: no better validation top-1 for the patience" if s["stopped_early"] else \
            f"ran its {epochs} epochs (sequential search, equal short runs)"
        out.append(trial(c, precision, curve, why, str(run_dir)))
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
    max_t = so.max_epochs or opts.epochs
    started = not ray.is_initialized()
    if started:
        if so.address:
            ray.init(address=so.address, log_to_driver=False)
        else:
            ray.init(num_cpus=usable_cpus(), include_dashboard=False, log_to_driver=False,
                     object_store_memory=200 * 1024 ** 2)
    try:
        say(f"[search] {len(names)} candidates on Ray Tune ({'cluster ' + so.address if so.address else 'local'}"
            f"), ASHA on validation top-1: grace {so.grace_period} epochs, reduction factor {so.reduction_factor}, "
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

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=so.grace_period,
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
