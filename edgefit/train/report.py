"""The end of a training run: evaluate the best checkpoint, measure augmented vs clean training images,
diagnose the run, draw the curves, write summary.json."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import __version__, checkpoint
from ..fsutil import atomic_write_bytes, atomic_write_json
from .augment_check import TRAIN_CHECK_IMAGES, accuracy_under, in_force, sample
from .evaluate import evaluate


def _train_check(model, plan, sets, cfg, device) -> dict | None:
    """Top-1 of the trained model on training images as fed, under each enabled transform, and under the
    whole augmentation of the run (the augmentation_too_strong rule of thumb)."""
    from ..data.pipeline import Augment
    from .config import JITTER

    if plan.strategy == "head":
        return None
    aug = plan.final_augment
    kinds = ("none", "crop") + tuple(t for t in ("flip", "jitter") if aug[t]) + ("all",)
    strength = cfg.jitter if cfg.jitter else JITTER
    augment = Augment.of(aug, strength)
    ds = sets["train"].with_augment(augment)
    picked = sample(len(ds), TRAIN_CHECK_IMAGES, cfg.seed + 1)
    acc = accuracy_under(model, ds, picked, kinds, device, cfg.seed, strength, augment.scale)
    acc["clean"] = acc.pop("none")
    return {k: round(v, 4) for k, v in acc.items()}


def finish(run_dir: Path, cfg, plan, sets, state, data_seconds, wall_seconds, world_size: int = 1) -> dict:
    from ..data.pipeline import loader
    from .diagnostics import Diagnostic, diagnose

    split, variant, device = plan.split, plan.variant, plan.device
    plan.final_augment = {k: in_force(k, v) for k, v in state["augment"].items()}  # undecided: as it trained
    ck = checkpoint.load(run_dir / "best.pt")
    model = checkpoint.build_model(ck).to(device)
    results = {name: evaluate(model, loader(sets[name], 128, False), device, len(split.classes))
               for name in ("val", "test") if name in sets}
    val = results["val"]
    split.skipped = {name: list(ds.skipped) for name, ds in sets.items()}  # as the loaders met them
    history = state["history"]
    train_s = state["train_seconds"]
    train_images = sum(len(sets["train"]) for _ in history)
    train_check = _train_check(model.to(memory_format=torch.channels_last), plan, sets, cfg, device)
    diags = diagnose(history, state["events"], len(split.classes), val["top1"], val["n"], train_check, plan.lr,
                     cfg.batch_size)
    leaks = [f for f in plan.data_checks if f["code"] in ("leak", "label_conflict")]
    if leaks:
        diags.insert(0, Diagnostic("suspiciously_good", "error", None,
                                   "; ".join(f["message"] for f in leaks) + " (before training, by content hash)",
                                   {"findings": leaks}))
    summary = {
        "variant": variant.name,
        "classes": split.classes,
        "num_classes": len(split.classes),
        "val_top1": val["top1"],
        "test_top1": results["test"]["top1"] if "test" in results else None,
        "best_epoch": state["best_epoch"],
        "per_class_accuracy": dict(zip(split.classes, val["per_class"], strict=True)),
        "confusion_matrix": val["confusion"],
        "confusion_matrix_axes": "rows: true class, columns: predicted class (validation split)",
        "images": split.counts(),
        "images_skipped": {name: len(v) for name, v in split.skipped.items()},
        "skipped_files": [f for v in split.skipped.values() for f in v][:100],
        "epochs_run": len(history),
        "epochs_planned": cfg.epochs,
        "stopped_early": state["stopped_early"],
        "stopped_because": state.get("stopped"),
        "strategy": plan.strategy,
        "strategy_requested": cfg.strategy,
        "strategy_reason": plan.why,
        "weights": plan.weights,
        "optimizer": plan.optimizer,
        "lr": plan.lr,
        "batch_size": cfg.batch_size,
        "augment": plan.final_augment,
        "decisions": {"lr": {"value": plan.lr, "why": plan.lr_reason, "range_test": plan.range_test},
                      "augment": {k: {"on": in_force(k, v), "why": v[1] if v else "undecided"}
                                  for k, v in state["augment"].items()},
                      "backoffs": [e for e in state["events"] if e["kind"] == "diverged"]},
        "train_check": train_check,
        "diagnostics": [d.to_dict() for d in diags],
        "data_checks": plan.data_checks,
        "seed": cfg.seed,
        "device": str(device),
        "world_size": world_size,
        "threads": torch.get_num_threads(),
        "wall_time_s": round(wall_seconds, 2),
        "data_load_s": round(data_seconds, 2),
        "train_time_s": round(train_s, 2),
        "seconds_per_epoch": round(sum(m["epoch_seconds"] for m in history) / max(1, len(history)), 2),
        "train_images_per_sec": round(train_images / train_s, 1) if train_s else None,
        "best_checkpoint": "best.pt",
        "split_digest": split.digest(),
        "data_root": split.root,
        "edgefit_version": __version__,
    }
    atomic_write_json(run_dir / "summary.json", summary)
    plot_curves(run_dir / "curves.png", history, variant.name)
    return summary


def plot_curves(path: Path, history: list[dict], title: str) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m["epoch"] for m in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(epochs, [m["train_loss"] for m in history], "o-", label="train")
    a.plot(epochs, [m["val_loss"] for m in history], "o-", label="val")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    b.plot(epochs, [m["train_top1"] for m in history], "o-", label="train")
    b.plot(epochs, [m["val_top1"] for m in history], "o-", label="val")
    b.set_xlabel("epoch")
    b.set_ylabel("top-1")
    b.set_ylim(0, 1)
    b.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
