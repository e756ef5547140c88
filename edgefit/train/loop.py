"""The training loop: phases, SGD (Nesterov) or AdamW from timm's optimizer factory with timm's warm-up +
cosine schedule, label smoothing, early stopping on validation top-1, best and last checkpoints written
atomically, exact resume, and the practitioner's safeguards:

- a loss that becomes NaN/inf, or an epoch whose loss more than doubles, is caught: the epoch restarts at
  0.3x the learning rate (at most `max_backoffs` times) from the weights that had the phase's lowest training
  loss so far (not the epoch's start: a loss that first bounced and then blew up has already damaged those,
  and lower rates only recover from them more slowly), and the event is kept for the diagnostics; training
  never crashes on a NaN;
- early stopping on validation top-1 waits until it beats always guessing the most frequent class;
- the crop's scale, flips and colour jitter left to `auto` are decided from evidence (augment_check.py) once
  the model is good enough to tell, and the decision is kept for resume;
- per layer group, the RMS of gradients over the RMS of weights is logged per epoch (metrics.jsonl).

Free of global state and device-agnostic: everything comes in through `Fit`, and only rank 0 reports.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import checkpoint
from ..fsutil import atomic_write_text
from .augment_check import in_force, word
from .distributed import Dist
from .evaluate import evaluate
from .model_parts import set_trainable, train_mode
from .progress import Reporter

BACKOFF = 0.3
DIVERGE_EPOCH_RISE = 2.0  # an epoch's training loss this far above the phase's best epoch so far
EXPLODED_OVER_CHANCE = 5.0  # or this far above the loss of a uniform guess, log(classes): never in sane training
GRAD_EVERY = 10  # steps between gradient-scale samples
DECIDE_FROM_EPOCH = 2


@dataclass
class Phase:
    name: str  # warmup | finetune | train | head
    part: str  # classifier | partial | full | all
    epochs: int
    lr: float
    optimizer: str = "adamw"  # adamw | sgd (Nesterov momentum 0.9)


@dataclass
class Fit:
    model: nn.Module  # what is trained (the classifier alone when features are cached)
    train_loader: Callable[[int, dict], object]  # (epoch, augment decisions) -> loader
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
    augment: dict = field(default_factory=dict)  # {"flip": [on, why] | None (auto: undecided), "jitter": ...}
    check_augment: Callable[[nn.Module], dict | None] | None = None  # evidence for undecided transforms
    max_backoffs: int = 3
    interrupt_after: int | None = None  # testing hook: stop as if killed after this epoch
    dist: Dist = field(default_factory=Dist)  # the ranks of a torchrun launch (one process by default)
    on_epoch: Callable[[dict], None] | None = None  # rank 0, after each epoch: its metrics (a search's reports)


def _guess_top1(val: dict) -> float:
    """The validation top-1 of always answering the most frequent class. Early stopping waits until the best
    epoch beats it: from scratch the model in eval mode can sit at that level for several epochs while it
    already fits the training images, and stopping a model that has shown nothing yet saves only the time
    of a useless result (the diagnostics then report the underfitting)."""
    rows = [sum(r) for r in val["confusion"]]
    return max(rows) / max(1, sum(rows))


def _snapshot(model: nn.Module, opt, epoch: int) -> dict:
    return {"model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer": copy.deepcopy(opt.state_dict()), "epoch": epoch}


def _optimizer(model: nn.Module, phase: Phase, weight_decay: float, steps_per_epoch: int, warmup_epochs: float,
               lr: float, saved: dict | None = None, step: int = 0):
    """timm's optimizer (no weight decay on biases and norms) and warm-up + cosine schedule to 1% of the peak,
    updated per step; `saved` optimizer state and `step` put both where an earlier run left them."""
    import timm.optim
    from timm.scheduler import CosineLRScheduler

    if phase.part != "all":
        set_trainable(model, phase.part)
    opt = timm.optim.create_optimizer_v2(model, opt="sgd" if phase.optimizer == "sgd" else "adamw", lr=lr,
                                         weight_decay=weight_decay, momentum=0.9)
    if saved is not None:
        opt.load_state_dict(saved)
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"] = lr
    total = max(1, phase.epochs * steps_per_epoch)
    warm = min(int(warmup_epochs * steps_per_epoch), total // 2)
    sched = CosineLRScheduler(opt, t_initial=max(1, total - warm), lr_min=0.01 * lr, warmup_t=warm,
                              warmup_lr_init=lr / max(1, warm), warmup_prefix=True, t_in_epochs=False)
    sched.step_update(step)
    return opt, sched


def _phase_at(phases: list[Phase], epoch: int) -> tuple[int, int]:
    """(phase index, first epoch of that phase) for a global epoch."""
    start = 0
    for i, ph in enumerate(phases):
        if epoch < start + ph.epochs:
            return i, start
        start += ph.epochs
    return len(phases) - 1, start - phases[-1].epochs


def layer_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Parameters by layer group: each stage of `blocks`, and each other top-level child (stem, head, classifier)."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "blocks" and len(parts) > 2 else parts[0] if len(parts) > 1 else "all"
        groups.setdefault(key, []).append(p)
    return groups


class GradScale:
    """RMS of gradients over RMS of weights per layer group, sampled every GRAD_EVERY steps."""

    def __init__(self, model: nn.Module):
        self.groups = {k: v for k, v in layer_groups(model).items() if any(p.requires_grad for p in v)}
        self.sq = {k: 0.0 for k in self.groups}
        self.samples = 0

    def sample(self) -> None:
        for k, params in self.groups.items():
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                self.sq[k] += float(sum(n.double() ** 2 for n in torch._foreach_norm(grads)))
        self.samples += 1

    def ratios(self) -> dict[str, float]:
        """Per group; empty when the epoch had no sampled step (short epochs), never a made-up 0."""
        out = {}
        if not self.samples:
            return out
        for k, params in self.groups.items():
            numel = sum(p.numel() for p in params)
            w = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params) / numel)
            g = math.sqrt(self.sq[k] / max(1, self.samples) / numel)
            out[k] = float(f"{g / w:.4g}") if w > 0 else float("nan")
        return out


def _augment_now(fit: Fit, state: dict) -> dict:
    """The transforms in force: decided ones as decided; undecided (auto) ones off until there is evidence, but
    the wide crop on (augment_check.in_force)."""
    return {k: in_force(k, v) for k, v in state["augment"].items()}


def _decide(fit: Fit, model: nn.Module, state: dict, epoch: int, total: int) -> None:
    undecided = [k for k, v in state["augment"].items() if v is None]
    if not undecided or fit.check_augment is None or epoch < DECIDE_FROM_EPOCH:
        return
    verdict = fit.dist.share(fit.check_augment(model) if fit.dist.main else None)  # rank 0 decides for all
    last_chance = epoch >= max(DECIDE_FROM_EPOCH + 1, total // 3)
    for k in undecided:
        if verdict is not None:
            state["augment"][k] = [verdict[k][0], f"decided after epoch {epoch}: {verdict[k][1]}"]
        elif last_chance:
            on = in_force(k, None)
            state["augment"][k] = [on, f"{word(k, on)}: after {epoch} epochs the model was still too weak to show "
                                       "whether it keeps the classes"]
    if verdict is not None or last_chance:
        fit.reporter.message("augmentation: " + "; ".join(f"{k} {word(k, state['augment'][k][0])} "
                                                           f"({state['augment'][k][1]})" for k in undecided))
    model.train()


def run(fit: Fit, resume_state: dict | None = None) -> dict:
    """Train; returns the loop state (history, best epoch, wall time, events, augmentation decisions)."""
    # channels-last runs the depthwise/pointwise convolutions of these networks ~1.4x faster on CPU
    model, device = fit.model.to(fit.device, memory_format=torch.channels_last), fit.device
    net = model  # what the steps run: DistributedDataParallel over `model` under torchrun
    total_epochs = sum(p.epochs for p in fit.phases)
    criterion = nn.CrossEntropyLoss(label_smoothing=fit.label_smoothing)
    state = resume_state or {"epoch": 0, "best_top1": -1.0, "best_loss": math.inf, "best_epoch": 0,
                             "since_best": 0, "history": [], "train_seconds": 0.0, "stopped_early": False,
                             "events": [], "augment": copy.deepcopy(fit.augment), "lr_scale": 1.0, "step": 0,
                             "stopped": None}
    if resume_state:
        model.load_state_dict(resume_state["model"])
    opt = sched = None
    current_phase = -1
    steps = len(fit.train_loader(0, _augment_now(fit, state)))
    backoffs = sum(1 for e in state["events"] if e["kind"] == "diverged")
    while state["epoch"] < total_epochs and not state["stopped_early"] and not state["stopped"]:
        epoch = state["epoch"]
        pi, _ = _phase_at(fit.phases, epoch)
        phase = fit.phases[pi]
        if pi != current_phase:
            resumed = (current_phase == -1 and resume_state is not None and resume_state.get("phase") == pi
                       and "optimizer" in resume_state)
            if not resumed:  # a new phase starts at its own peak rate
                state.update(step=0, lr_scale=1.0)
            opt, sched = _optimizer(model, phase, fit.weight_decay, steps, fit.warmup_epochs,
                                    phase.lr * state["lr_scale"], resume_state["optimizer"] if resumed else None,
                                    state["step"])
            net = fit.dist.wrap(model)
            current_phase = pi
            good = _snapshot(model, opt, state["epoch"])  # the phase's lowest-loss state so far: its start
        step0 = state["step"]
        torch.manual_seed(fit.seed * 1000 + epoch + 7919 * backoffs)  # augmentation and dropout of this epoch
        loader = fit.train_loader(epoch, _augment_now(fit, state))
        fit.reporter.epoch_start(epoch, total_epochs, phase.name, len(loader))
        train_mode(model)
        grads = GradScale(model)
        t0, seen, loss_sum, correct, bad = time.perf_counter(), 0, 0.0, 0, None
        for x, y in loader:
            x = x.to(device, non_blocking=True, memory_format=torch.channels_last) if x.ndim == 4 else x.to(device)
            y = y.to(device, non_blocking=True)
            logits = net(x)
            loss = criterion(logits, y)
            value = float(loss.detach())
            if not fit.dist.all_ok(math.isfinite(value), device):
                bad = str(value) if not math.isfinite(value) else "non-finite on another rank"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if state["step"] % GRAD_EVERY == 0:
                grads.sample()
            opt.step()
            state["step"] += 1
            sched.step_update(state["step"])
            seen += len(y)
            loss_sum += value * len(y)
            correct += int((logits.argmax(1) == y).sum())
            fit.reporter.batch(loss_sum / seen, correct / seen, seen / (time.perf_counter() - t0))
        seen, loss_sum, correct = fit.dist.sum([seen, loss_sum, correct], device)  # the global batch's figures
        seen, correct = int(seen), int(correct)
        train_loss = loss_sum / max(1, seen)
        prev = min((m["train_loss"] for m in state["history"] if m["phase"] == phase.name), default=None)
        chance_loss = math.log(fit.num_classes)
        if bad is None and train_loss > chance_loss and (
                (prev is not None and train_loss > DIVERGE_EPOCH_RISE * prev)
                or train_loss > EXPLODED_OVER_CHANCE * chance_loss):
            bad = train_loss
        if bad is not None:
            fit.reporter.epoch_end_quiet()
            lr_now = phase.lr * state["lr_scale"]
            event = {"kind": "diverged", "epoch": epoch + 1, "loss": bad, "lr": lr_now, "backoffs": backoffs}
            if backoffs >= fit.max_backoffs:
                state["events"].append({**event, "recovered": False})
                state["stopped"] = "diverged"
                fit.reporter.message(f"epoch {epoch + 1}: the loss diverged ({bad}) after {backoffs} restarts at lower "
                                     "learning rates; stopping with the best checkpoint so far")
                if state["best_epoch"] == 0:  # no epoch finished: keep the starting weights (`good` is still
                    model.load_state_dict(good["model"])  # the phase's start) as the result
                    if fit.dist.main:
                        fit.save_best(evaluate(model, fit.val_loader, device, fit.num_classes, criterion))
                break
            backoffs += 1
            state["lr_scale"] *= BACKOFF
            state["events"].append({**event, "recovered": True, "new_lr": phase.lr * state["lr_scale"],
                                    "restored_epoch": good["epoch"]})
            shown = bad if isinstance(bad, str) else f"{bad:.3g}"
            since = (f" from the weights after epoch {good['epoch']}" if good["epoch"] != epoch
                     else "")  # `good` is this epoch's start unless an earlier epoch had a lower loss
            fit.reporter.message(f"epoch {epoch + 1}: the loss diverged ({shown}) at lr {lr_now:.3g}; "
                                 f"restarting the epoch{since} at {phase.lr * state['lr_scale']:.3g}")
            model.load_state_dict(good["model"])
            state["step"] = step0  # the schedule stays where the epoch count is
            opt, sched = _optimizer(model, phase, fit.weight_decay, steps, fit.warmup_epochs,
                                    phase.lr * state["lr_scale"], good["optimizer"], state["step"])
            net = fit.dist.wrap(model)
            continue
        train_s = time.perf_counter() - t0
        val = fit.dist.share(evaluate(model, fit.val_loader, device, fit.num_classes, criterion)
                             if fit.dist.main else None)  # rank 0 evaluates; every rank acts on its figures
        state["train_seconds"] += train_s
        better = (val["top1"] > state["best_top1"]
                  or (val["top1"] == state["best_top1"] and val["loss"] < state["best_loss"]))
        metrics = {"epoch": epoch + 1, "epochs": total_epochs, "phase": phase.name,
                   "lr": opt.param_groups[0]["lr"], "train_loss": train_loss, "train_top1": correct / max(1, seen),
                   "val_loss": val["loss"], "val_top1": val["top1"], "images_per_sec": seen / train_s,
                   "epoch_seconds": time.perf_counter() - t0, "best": better,
                   "augment": _augment_now(fit, state), "grad_weight_ratio": grads.ratios()}
        if better:
            state.update(best_top1=val["top1"], best_loss=val["loss"], best_epoch=epoch + 1, since_best=0)
            if fit.dist.main:
                fit.save_best(val)
        else:
            state["since_best"] += 1
        if prev is None or train_loss <= prev:
            good = _snapshot(model, opt, epoch + 1)
        state["history"].append(metrics)
        state["epoch"] = epoch + 1
        _decide(fit, model, state, epoch + 1, total_epochs)
        if (pi == len(fit.phases) - 1 and state["since_best"] >= fit.patience and state["epoch"] < total_epochs
                and state["best_top1"] > _guess_top1(val) + 1e-9):
            state["stopped_early"] = True
        if fit.dist.main:
            _write_metrics(fit.run_dir, state["history"])
            checkpoint.save(fit.run_dir / "last.pt", {
                **{k: v for k, v in state.items() if k not in ("model",)},
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "phase": pi, "optimizer": opt.state_dict()})
        fit.reporter.epoch_end(metrics)
        if fit.on_epoch is not None and fit.dist.main:
            fit.on_epoch({**metrics, "stopped_early": state["stopped_early"]})
        if fit.interrupt_after is not None and state["epoch"] >= fit.interrupt_after:
            raise KeyboardInterrupt
    if state["stopped_early"]:
        fit.reporter.message(f"early stop: validation top-1 has not improved for {fit.patience} epochs")
    if fit.dist.main:
        _write_metrics(fit.run_dir, state["history"])  # also when no epoch finished (a run stopped by divergence)
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
    acc, used = 0.0, 0
    for _ in range(steps):
        logits = model(x)
        loss = crit(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        used += 1
        first = float(loss) if first is None else first
        last = float(loss)
        acc = float((logits.argmax(1) == y).float().mean())
        if acc == 1.0 and last < 0.1 * first:
            break
    passed = acc == 1.0 and last < 0.1 * first
    return {"passed": passed, "steps": used, "batch": int(len(y)), "initial_loss": first, "final_loss": last,
            "final_accuracy": acc,
            "verdict": ("pass: the model overfits one batch, the pipeline can learn" if passed else
                        "FAIL: the model cannot overfit one small batch; suspect labels, preprocessing or the "
                        "learning rate before training longer")}
