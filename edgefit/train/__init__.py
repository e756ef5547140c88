"""`edgefit train`: transfer learning of a zoo variant on a folder of labelled images.

    from edgefit.train import train, TrainConfig
    result = train(TrainConfig(variant="mobilenet_v2_0.35_96", data="demo", weights="none", epochs=10))
    print(result.val_top1, result.run_dir)
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import JITTER, OPTIMIZER_WD, TrainConfig, resolve_strategy
from .distributed import Dist

__all__ = ["TrainConfig", "TrainResult", "train", "sanity"]


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    summary: dict  # summary.json as written

    @property
    def val_top1(self) -> float:
        return self.summary["val_top1"]

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def diagnostics(self) -> list[dict]:
        return self.summary.get("diagnostics", [])


@dataclass
class Plan:
    """Everything resolved before the first step: the run's settings and where they came from."""

    variant: object  # zoo.Variant
    weights: str
    weights_info: dict
    split: object  # data.folder.Split
    strategy: str
    why: str
    optimizer: str
    lr: float | None  # None until the range test has run
    lr_reason: str
    weight_decay: float
    run_dir: Path
    device: object  # torch.device
    augment: dict = field(default_factory=dict)  # {transform: [on, why] | None (decided from evidence)}
    data_checks: list = field(default_factory=list)
    range_test: dict | None = None
    final_augment: dict | None = None  # {transform: on} as training ended
    model_meta: dict = field(default_factory=dict)  # stored in every checkpoint (a pruned start's architecture)

    def resolved(self, pp) -> dict:
        return {"weights": self.weights, "strategy": self.strategy, "why": self.why, "optimizer": self.optimizer,
                "lr": self.lr, "lr_reason": self.lr_reason, "weight_decay": self.weight_decay,
                "device": str(self.device), "preprocess": pp.to_dict(), "augment": self.augment}


def _prepare(cfg: TrainConfig, resume: bool, model=None, split=None):
    """(plan, model): validated config, split, model and run directory. `model` and `split` let a later
    stage (compress) fine-tune its own network on an existing split."""
    import torch

    from .. import zoo
    from ..data.folder import Split, scan
    from ..errors import BadInput
    from ..weights import build_with_weights, default_weights

    cfg.validate()
    variant = zoo.get_variant(cfg.variant)
    weights = cfg.weights or default_weights(variant)
    if split is None:
        split = scan(cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction)
    if cfg.prune and model is not None:
        raise BadInput("--prune applies to the zoo variant train builds, not to a given network")
    strategy, why = resolve_strategy(cfg.strategy, weights, split.images_per_class(), cfg.prune)
    optimizer = cfg.resolved_optimizer(weights)
    run_dir = Path(cfg.out) if cfg.out else cfg.default_out(strategy, weights, optimizer)
    if run_dir.exists() and not run_dir.is_dir():
        raise BadInput(f"--out {run_dir} is a file; give a directory for the run")
    saved = None
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise BadInput(f"nothing to resume in {run_dir}: no last.pt (start without --resume)")
        saved = json.loads((run_dir / "config.json").read_text())
        for key in ("variant", "weights", "seed", "batch_size"):
            if saved["config"].get(key) != cfg.to_dict().get(key) and cfg.to_dict().get(key) is not None:
                raise BadInput(f"--resume with a different {key} than the run in {run_dir} "
                               f"({cfg.to_dict()[key]!r} vs {saved['config'][key]!r})")
        split = Split.from_dict(json.loads((run_dir / "split.json").read_text()))
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise BadInput(f"run directory {run_dir} already holds a run; continue it with --resume or choose "
                       "another --out")
    device = torch.device("cuda" if (cfg.device == "auto" and torch.cuda.is_available()) or cfg.device == "cuda"
                          else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda but no CUDA device is available; use --device cpu")
    torch.manual_seed(cfg.seed)  # the new classifier (and, from scratch, every layer) starts the same
    model_meta = {}
    if model is None:
        model, weights_info = build_with_weights(variant, len(split.classes), weights)
        model_meta = _prune_start(model, variant, cfg.prune, weights)
    else:
        weights_info = {"source": "given model"}
    if saved:
        lr, lr_reason = saved["resolved"]["lr"], saved["resolved"]["lr_reason"]
    elif cfg.lr is not None:
        lr, lr_reason = cfg.lr, "--lr"
    elif weights == "none" and strategy == "full":
        lr, lr_reason = None, "learning-rate range test (from scratch)"
    else:
        lr = cfg.default_lr(optimizer)
        lr_reason = f"{optimizer} default for fine-tuning"
    wd = cfg.weight_decay if cfg.weight_decay is not None else OPTIMIZER_WD[optimizer]
    plan = Plan(variant, weights, weights_info, split, strategy, why, optimizer, lr, lr_reason, wd, run_dir, device,
                cfg.augment_decisions(strategy), model_meta=model_meta)
    return plan, model


def _prune_start(model, variant, ratio: float, weights: str) -> dict:
    """With `--prune R`: remove R of the channels of the starting network (lowest weight magnitude first, the
    stem and classifier kept) before any training; the checkpoint metadata that rebuilds it."""
    if not ratio:
        return {}
    from .. import arch
    from ..prune import prune_in_place

    prune_in_place(model, variant.resolution, ratio)
    return {"arch": arch.describe(model), "channel_ratio": ratio,
            "pruned_from": f"{variant.name} with {weights} weights, before training"}


def _preprocess(model, variant):
    from ..data.pipeline import Preprocess

    return Preprocess.of(model, variant.resolution)


def _datasets(plan: Plan, pp, cfg: TrainConfig, world_size: int = 1):
    """The splits as streamed image sets: nothing is decoded here; unreadable files are met, skipped and
    counted as the loaders reach them."""
    from ..data.cache import ImageCache
    from ..data.pipeline import ImageSet

    split = plan.split
    cache = ImageCache(cfg.data_cache) if cfg.data_cache else None
    return {name: ImageSet(split, name, pp, None, cache=cache, world_size=world_size)
            for name in ("train", "val", "test") if split.files[name]}


def _data_checks(plan: Plan, reporter) -> list[dict]:
    """The fast checks before training: exact copies between the splits (leaks) and across classes."""
    from ..doctor import check_split

    report = check_split(plan.split, near=False, others=False)
    found = [f for f in report.summary() if f["code"] in ("leak", "label_conflict", "duplicate")]
    for f in found:
        reporter.message(f"data check: {f['severity']} {f['code']}: {f['message']}")
    return found


def _choose_lr(plan: Plan, model, sets, cfg: TrainConfig, reporter) -> None:
    from ..data.pipeline import loader
    from .lr_range import range_test

    t = range_test(model, loader(sets["train"], cfg.batch_size, True, cfg.seed, 10 ** 6), plan.optimizer,
                   plan.weight_decay, plan.device, label_smoothing=cfg.label_smoothing)
    plan.lr, plan.lr_reason = t.lr, t.reason
    plan.range_test = t.to_dict()
    reporter.message(f"learning rate {t.lr:.3g}: {t.reason}")


def train(cfg: TrainConfig, resume: bool = False, interrupt_after: int | None = None, quiet: bool = False,
          model=None, split=None, extra_meta: dict | None = None, on_epoch=None) -> TrainResult:
    """Train `cfg.variant` on `cfg.data`; resumable. Raises BadInput on bad folders or options.
    With `model` (and `split`), fine-tunes that network instead of building one; `extra_meta` is stored
    in every checkpoint (e.g. the architecture of a pruned network); `on_epoch(metrics)` is called after each
    epoch (a search reports to its scheduler through it)."""
    t_start = time.perf_counter()
    given_model = model is not None
    dist = Dist.from_env(cfg.device)
    try:
        plan, model = _prepare(cfg, resume, model, split)
        plan.device = dist.device(plan.device)
        dist.per_rank_batch(cfg.batch_size)  # refuses a batch that does not split over the ranks
        dist.barrier()  # every rank has checked the run directory before rank 0 writes to it
        result = _train(cfg, plan, model, dist, resume, given_model, quiet, interrupt_after, extra_meta, t_start,
                        on_epoch)
    finally:
        if dist.owned:
            dist.close()
    return result


def _train(cfg, plan, model, dist, resume, given_model, quiet, interrupt_after, extra_meta, t_start, on_epoch):
    import torch

    from .. import checkpoint
    from ..fsutil import atomic_write_json, atomic_write_text
    from . import loop, report
    from .progress import Reporter

    run_dir, variant, split = plan.run_dir, plan.variant, plan.split
    reporter = Reporter(enabled=not quiet)
    pp = _preprocess(model, variant)
    model = dist.sync_batchnorm(model)
    ranks = f" on {dist.world} processes ({dist.backend})" if dist.on else ""
    reporter.message(f"edgefit train: {variant.name} on {len(split.classes)} classes "
                     f"({split.counts()['train']} train / {split.counts()['val']} val images), weights "
                     f"{plan.weights}, strategy {plan.strategy} ({plan.why}){ranks}; run directory {run_dir}")
    created = not run_dir.exists()
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    try:
        t_data = time.perf_counter()
        if cfg.data_checks and not resume and not given_model and dist.main:
            plan.data_checks = _data_checks(plan, reporter)
        sets = _datasets(plan, pp, cfg, dist.world)
        data_seconds = time.perf_counter() - t_data
        if plan.lr is None:
            if dist.main:
                _choose_lr(plan, model, sets, cfg, reporter)
            plan.lr, plan.lr_reason, plan.range_test = dist.share((plan.lr, plan.lr_reason, plan.range_test))
        resolved = {**plan.resolved(pp), "world_size": dist.world}
        if not resume and dist.main:
            atomic_write_json(run_dir / "split.json", split.to_dict())
            atomic_write_json(run_dir / "config.json", {"config": cfg.to_dict(), "resolved": resolved})
            import yaml

            atomic_write_text(run_dir / "config.yaml", yaml.safe_dump({**cfg.to_dict(), "resolved": resolved},
                                                                      sort_keys=False))
        ck_meta = {"variant": variant.name, "classes": split.classes, "preprocess": pp.to_dict(),
                   "weights": {k: v for k, v in plan.weights_info.items() if k != "new_tensors"}}

        def save_best(val: dict) -> None:
            checkpoint.save(run_dir / "best.pt", checkpoint.model_checkpoint(
                model, ck_meta["variant"], ck_meta["classes"], ck_meta["preprocess"], ck_meta["weights"],
                extra={"val_top1": val["top1"], "split_digest": split.digest(), "strategy": plan.strategy,
                       **plan.model_meta, **(extra_meta or {})}))

        fit = _fit(plan, model, sets, cfg, given_model, save_best, reporter, interrupt_after, dist)
        fit.on_epoch = on_epoch
        resume_state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True) if resume else None
        state = loop.run(fit, resume_state)
        for per_rank in dist.gather({name: list(ds.skipped) for name, ds in sets.items()}):  # every rank's finds
            for name, found in per_rank.items():
                sets[name].skipped.update(dict.fromkeys(found))
        summary = None
        if dist.main:
            summary = report.finish(run_dir, cfg, plan, sets, state, data_seconds, time.perf_counter() - t_start,
                                    dist.world)
        summary = dist.share(summary)
        if summary["skipped_files"]:
            reporter.message(f"skipped {sum(summary['images_skipped'].values())} unreadable image(s), "
                             f"e.g. {summary['skipped_files'][0]}")
    except BaseException:
        if dist.main and created and not (run_dir / "last.pt").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth keeping: leave no half run behind
        raise
    return TrainResult(run_dir, summary)


def _fit(plan: Plan, model, sets, cfg: TrainConfig, given_model: bool, save_best, reporter, interrupt_after,
         dist: Dist):
    from ..data.pipeline import Augment, loader
    from . import loop
    from .augment_check import CHECK_IMAGES, accuracy_under, decide, sample

    strength = cfg.jitter if cfg.jitter else JITTER
    check = None
    if plan.strategy == "head":
        fit_model, train_loader, val_loader = _cached_features(model, sets, cfg, plan.device, dist)
    else:
        fit_model = model

        def train_loader(epoch: int, aug: dict):
            ds = sets["train"].with_augment(Augment.of(aug, strength))
            return loader(ds, dist.per_rank_batch(cfg.batch_size), True, cfg.seed, epoch,
                          sampler=_sampler(ds, dist, cfg.seed, epoch))

        val_loader = loader(sets["val"], cfg.batch_size * 2, False)
        idx = sample(len(sets["val"]), CHECK_IMAGES, cfg.seed)

        def check(m):
            acc = accuracy_under(m, sets["val"], idx, ("none", "flip", "jitter", "crop"), plan.device, cfg.seed,
                                 strength)
            return decide(acc, len(plan.split.classes), images=len(idx))

    phases = _phases(plan.strategy, plan.weights, cfg.epochs, plan.lr, plan.optimizer)
    if given_model:  # a trained network to recover (e.g. after pruning): everything, one phase
        phases = [loop.Phase("finetune", "full", cfg.epochs, plan.lr, plan.optimizer)]
    return loop.Fit(model=fit_model, train_loader=train_loader, val_loader=val_loader, phases=phases,
                    num_classes=len(plan.split.classes), device=plan.device, run_dir=plan.run_dir, seed=cfg.seed,
                    weight_decay=plan.weight_decay, label_smoothing=cfg.label_smoothing,
                    warmup_epochs=cfg.warmup_epochs, patience=cfg.patience, save_best=save_best, reporter=reporter,
                    augment=plan.augment, check_augment=check, interrupt_after=interrupt_after, dist=dist)


def _phases(strategy: str, weights: str, epochs: int, lr: float, optimizer: str):
    """head: one phase on cached features; from scratch: one phase; fine-tuning: a classifier warm-up on
    the frozen backbone, then the unfrozen part at a tenth of the learning rate."""
    from .loop import Phase

    if strategy == "head":
        return [Phase("head", "all", epochs, lr, optimizer)]
    if weights == "none":
        return [Phase("train", "full", epochs, lr, optimizer)]
    warm = min(max(1, round(epochs * 0.2)), epochs - 1) if epochs >= 2 else 0
    phases = [Phase("warmup", "classifier", warm, lr, optimizer)] if warm else []
    return phases + [Phase("finetune", strategy, epochs - warm, lr * 0.1, optimizer)]


def _sampler(ds, dist: Dist, seed: int, epoch: int):
    """This rank's share of the epoch's shuffled order under torchrun; None in a single process."""
    if not dist.on:
        return None
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(ds, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=seed * 100003)
    sampler.set_epoch(epoch)
    return sampler


def _cached_features(model, sets, cfg, device, dist: Dist):
    """Head-only training: backbone features computed once (no augmentation), classifier trained on them."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from ..data.pipeline import ImageSet, loader

    model.eval().to(device)

    @torch.no_grad()
    def features(ds: ImageSet):
        xs, ys = [], []
        for x, y in loader(ds.without_augment(), 128, False):
            xs.append(model.forward_head(model.forward_features(x.to(device)), pre_logits=True).cpu())
            ys.append(y)
        return TensorDataset(torch.cat(xs), torch.cat(ys))

    tr, va = features(sets["train"]), features(sets["val"])
    head = model.get_classifier()

    def train_loader(epoch: int, aug: dict):
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        sampler = _sampler(tr, dist, cfg.seed, epoch)
        return DataLoader(tr, batch_size=dist.per_rank_batch(cfg.batch_size), shuffle=sampler is None,
                          sampler=sampler, generator=g)

    return head, train_loader, DataLoader(va, batch_size=512)


def sanity(cfg: TrainConfig) -> dict:
    """Overfit one small batch of the training split (no augmentation) and report the verdict."""
    import torch

    from .. import zoo
    from ..data.folder import scan
    from ..data.pipeline import ImageSet, Unreadable
    from ..weights import build_with_weights, default_weights
    from .loop import sanity_check

    cfg.validate()
    variant = zoo.get_variant(cfg.variant)
    weights = cfg.weights or default_weights(variant)
    split = scan(cfg.data, seed=cfg.seed, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction)
    model, _ = build_with_weights(variant, len(split.classes), weights)
    _prune_start(model, variant, cfg.prune, weights)
    pp = _preprocess(model, variant)
    torch.manual_seed(cfg.seed)
    per_class = max(1, 16 // len(split.classes))
    picked, seen = [], {}
    for rel, label in split.files["train"]:
        if seen.get(label, 0) < per_class:
            picked.append([rel, label])
            seen[label] = seen.get(label, 0) + 1
    split.files = {"train": picked, "val": [], "test": []}
    ds = ImageSet(split, "train", pp, None)
    items = [it for it in (ds[i] for i in range(len(ds))) if not isinstance(it, Unreadable)]
    x = torch.stack([it[0] for it in items])
    y = torch.tensor([it[1] for it in items])
    return {"variant": variant.name, "weights": weights, **sanity_check(model, (x, y), torch.device("cpu"))}
