"""The end of a training run: evaluate the best checkpoint, draw the curves, write summary.json."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import __version__, checkpoint
from ..fsutil import atomic_write_bytes, atomic_write_json
from .evaluate import evaluate


def finish(run_dir: Path, cfg, variant, split, sets, weights, strategy, why, optimizer, lr, device, state, data_seconds,
           wall_seconds) -> dict:
    from ..data.pipeline import loader

    ck = checkpoint.load(run_dir / "best.pt")
    model = checkpoint.build_model(ck).to(device)
    results = {name: evaluate(model, loader(sets[name], 128, False), device, len(split.classes))
               for name in ("val", "test") if name in sets}
    val = results["val"]
    history = state["history"]
    train_s = state["train_seconds"]
    train_images = sum(len(sets["train"]) for _ in history)
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
        "strategy": strategy,
        "strategy_requested": cfg.strategy,
        "strategy_reason": why,
        "weights": weights,
        "optimizer": optimizer,
        "lr": lr,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "device": str(device),
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
