"""The training loop: phases, AdamW with warm-up + cosine, label smoothing, early stopping on
validation top-1, best and last checkpoints written atomically, exact resume.

Free of global state and device-agnostic: everything it needs comes in through `Fit`, and only
rank 0 reports (see progress.py), so it can later run under torchrun.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import checkpoint
from ..fsutil import atomic_write_text
from .evaluate import evaluate
from .model_parts import set_trainable, train_mode
from .progress import Reporter


@dataclass
class Phase:
    name: str  # warmup | finetune | train | head
    part: str  # classifier | partial | full | all
    epochs: int
    lr: float
    optimizer: str = "adamw"  # adamw | sgd (nesterov momentum 0.9)


@dataclass
class Fit:
    model: nn.Module  # what is trained (the classifier alone when features are cached)
    train_loader: Callable[[int], object]  # epoch -> loader
    val_loader: object
    phases: list[Phase]
    num_classes: int
    device: torch.device
    run_dir: Path
    seed: int
    weight_decay: float
    label_smoothing: float
    warmup_epochs: float
    patience: int
    save_best: Callable[[dict], None]  # writes best.pt from the current state
    reporter: Reporter
    interrupt_after: int | None = None  # testing hook: stop as if killed after this epoch


def _optimizer(model: nn.Module, phase: Phase, weight_decay: float, steps_per_epoch: int, warmup_epochs: float):
    """AdamW (or SGD with Nesterov momentum), linear warm-up then cosine decay to 1% of the peak, per step."""
    part = set_trainable(model, phase.part) if phase.part != "all" else list(model.parameters())
    decay = [p for p in part if p.ndim > 1]
    no_decay = [p for p in part if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if phase.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=phase.lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=phase.lr)
    total = max(1, phase.epochs * steps_per_epoch)
    warm = min(int(warmup_epochs * steps_per_epoch), total // 2)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _phase_at(phases: list[Phase], epoch: int) -> tuple[int, int]:
    """(phase index, first epoch of that phase) for a global epoch."""
    start = 0
    for i, ph in enumerate(phases):
        if epoch < start + ph.epochs:
            return i, start
        start += ph.epochs
    return len(phases) - 1, start - phases[-1].epochs


def run(fit: Fit, resume_state: dict | None = None) -> dict:
    """Train; returns the loop state (history, best epoch, wall time)."""
    # channels-last runs the depthwise/pointwise convolutions of these networks ~1.4x faster on CPU
    model, device = fit.model.to(fit.device, memory_format=torch.channels_last), fit.device
    total_epochs = sum(p.epochs for p in fit.phases)
    criterion = nn.CrossEntropyLoss(label_smoothing=fit.label_smoothing)
    state = resume_state or {"epoch": 0, "best_top1": -1.0, "best_loss": math.inf, "best_epoch": 0,
                             "since_best": 0, "history": [], "train_seconds": 0.0, "stopped_early": False}
    if resume_state:
        model.load_state_dict(resume_state["model"])
    opt = sched = None
    current_phase = -1
    steps = len(fit.train_loader(0))
    while state["epoch"] < total_epochs and not state["stopped_early"]:
        epoch = state["epoch"]
        pi, _ = _phase_at(fit.phases, epoch)
        phase = fit.phases[pi]
        if pi != current_phase:
            opt, sched = _optimizer(model, phase, fit.weight_decay, steps, fit.warmup_epochs)
            if resume_state and resume_state.get("phase") == pi and "optimizer" in resume_state:
                opt.load_state_dict(resume_state["optimizer"])
                sched.load_state_dict(resume_state["scheduler"])
            current_phase = pi
        torch.manual_seed(fit.seed * 1000 + epoch)  # augmentation and dropout of this epoch
        loader = fit.train_loader(epoch)
        fit.reporter.epoch_start(epoch, total_epochs, phase.name, len(loader))
        train_mode(model)
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for x, y in loader:
            x = x.to(device, non_blocking=True, memory_format=torch.channels_last) if x.ndim == 4 else x.to(device)
            y = y.to(device, non_blocking=True)
            logits = model(x)
            loss = criterion(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            fit.reporter.batch(loss_sum / seen, correct / seen, seen / (time.perf_counter() - t0))
        train_s = time.perf_counter() - t0
        val = evaluate(model, fit.val_loader, device, fit.num_classes, criterion)
        state["train_seconds"] += train_s
        better = val["top1"] > state["best_top1"] or (val["top1"] == state["best_top1"] and val["loss"] < state["best_loss"])
        metrics = {"epoch": epoch + 1, "epochs": total_epochs, "phase": phase.name,
                   "lr": opt.param_groups[0]["lr"], "train_loss": loss_sum / seen, "train_top1": correct / seen,
                   "val_loss": val["loss"], "val_top1": val["top1"], "images_per_sec": seen / train_s,
                   "epoch_seconds": time.perf_counter() - t0, "best": better}
        if better:
            state.update(best_top1=val["top1"], best_loss=val["loss"], best_epoch=epoch + 1, since_best=0)
            fit.save_best(val)
        else:
            state["since_best"] += 1
        state["history"].append(metrics)
        state["epoch"] = epoch + 1
        if pi == len(fit.phases) - 1 and state["since_best"] >= fit.patience and state["epoch"] < total_epochs:
            state["stopped_early"] = True
        _write_metrics(fit.run_dir, state["history"])
        checkpoint.save(fit.run_dir / "last.pt", {
            **{k: v for k, v in state.items() if k not in ("model",)},
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "phase": pi, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()})
        fit.reporter.epoch_end(metrics)
        if fit.interrupt_after is not None and state["epoch"] >= fit.interrupt_after:
            raise KeyboardInterrupt
    if state["stopped_early"]:
        fit.reporter.message(f"early stop: validation top-1 has not improved for {fit.patience} epochs")
    return state


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    import json

    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in history))


def sanity_check(model: nn.Module, batch: tuple, device, steps: int = 80, lr: float = 3e-3) -> dict:
    """Can the model overfit one small batch? The classic test for a broken pipeline."""
    model = model.to(device)
    set_trainable(model, "full")
    model.train()
    x, y = batch[0].to(device), batch[1].to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    crit = nn.CrossEntropyLoss()
    first = last = None
    acc = 0.0
    for step in range(steps):
        logits = model(x)
        loss = crit(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
        last = float(loss)
        acc = float((logits.argmax(1) == y).float().mean())
        if acc == 1.0 and last < 0.1 * first:
            break
    passed = acc == 1.0 and last < 0.1 * first
    return {"passed": passed, "steps": step + 1, "batch": int(len(y)), "initial_loss": first, "final_loss": last,
            "final_accuracy": acc,
            "verdict": ("pass: the model overfits one batch, the pipeline can learn" if passed else
                        "FAIL: the model cannot overfit one small batch; suspect labels, preprocessing or the "
                        "learning rate before training longer")}
