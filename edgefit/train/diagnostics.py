"""Training diagnosed by its symptoms, the practitioners' way: a run that trained badly is never silent.

    loss NaN, or rising far above where it was    -> loss_diverged   (learning rate too high)
    loss going up and down from epoch to epoch    -> loss_bouncing   (learning rate too high or batch too small)
    loss flat while the model is still poor       -> plateau         (learning rate too low, optimizer, regularization)
    accuracy at chance after several epochs       -> not_learning    (labels, pipeline, learning rate)
    training accuracy low and validation close    -> underfitting    (train longer, a bigger model, less augmentation)
    training far above validation                 -> overfitting     (more data, augmentation, a smaller model)
    validation near perfect on a small split, or above training
                                                  -> suspiciously_good (a leak, or a split too small to trust)
    augmented training images much harder than validation
                                                  -> augmentation_too_strong (names the transform)
    gradient/weight scale of a layer group far from the others
                                                  -> vanishing_gradients / exploding_gradients
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

BOUNCE_RISE = 1.10  # an epoch's training loss this much above the previous epoch's counts as a rise
DIVERGE_RISE = 2.0
PLATEAU_GAIN = 0.02
OVERFIT_GAP = 0.15
UNDERFIT_TRAIN = 0.80
SMALL_VAL = 200
GRAD_SPREAD = 100.0  # a group's gradient/weight ratio this far from the median of the groups
GRAD_EPOCHS = 2  # ... in this many epochs running


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: str  # error | warning | info
    epoch: int | None
    message: str
    evidence: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Diagnostic:
        return cls(d["code"], d["severity"], d.get("epoch"), d["message"], d.get("evidence", {}))


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def loss_findings(history: list[dict], events: list[dict], lr: float, batch: int) -> list[Diagnostic]:
    out = []
    for e in events:  # divergences the loop caught and recovered from (or not)
        if e["kind"] == "diverged":
            recovered = e.get("recovered", False)
            what = f"became {e['loss']}" if isinstance(e["loss"], str) else f"rose to {e['loss']:.3g}"
            out.append(Diagnostic(
                "loss_diverged", "warning" if recovered else "error", e["epoch"],
                f"the training loss {what} in epoch {e['epoch']} at learning rate {e['lr']:.3g}: too high"
                + (f"; edgefit restarted the epoch at {e['new_lr']:.3g}"
                   + (f" from the weights after epoch {e['restored_epoch']}"
                      if e.get("restored_epoch") not in (None, e["epoch"] - 1) else "") if recovered else
                   f"; training stopped after {e.get('backoffs', 0)} restarts at lower rates: lower --lr further"),
                {k: v for k, v in e.items() if k != "kind"}))
    losses = [m["train_loss"] for m in history]
    rises = [(m["epoch"], prev, m["train_loss"]) for prev, m in zip(losses, history[1:], strict=False)
             if _finite(prev) and _finite(m["train_loss"]) and m["train_loss"] > BOUNCE_RISE * prev]
    best = math.inf
    for m in history:
        v = m["train_loss"]
        if not _finite(v):
            if not any(d.code == "loss_diverged" for d in out):
                out.append(Diagnostic("loss_diverged", "error", m["epoch"], f"the training loss is {v} in epoch "
                                      f"{m['epoch']}: lower the learning rate (now {lr:.3g})", {"train_loss": str(v)}))
            break
        if v > DIVERGE_RISE * best and not any(d.code == "loss_diverged" for d in out):
            out.append(Diagnostic("loss_diverged", "warning", m["epoch"],
                                  f"the training loss rose from {best:.3f} to {v:.3f} in epoch {m['epoch']}: the "
                                  f"learning rate {lr:.3g} is too high; try {lr / 3:.3g}", {"from": best, "to": v}))
        best = min(best, v)
    if len(rises) >= 2 or any(b > 1.5 * a for _, a, b in rises):
        out.append(Diagnostic("loss_bouncing", "warning", rises[0][0],
                              f"the training loss went up in {len(rises)} epoch(s) (first in epoch {rises[0][0]}: "
                              f"{rises[0][1]:.3f} -> {rises[0][2]:.3f}): the learning rate {lr:.3g} is too high or the "
                              f"batch ({batch}) too small; try --lr {lr / 3:.3g} or --batch-size {batch * 2}",
                              {"rises": [{"epoch": e, "from": a, "to": b} for e, a, b in rises]}))
    return out


def accuracy_findings(history: list[dict], num_classes: int, val_top1: float, n_val: int,
                      train_check: dict | None, lr: float) -> list[Diagnostic]:
    out = []
    chance = 1 / num_classes
    n = len(history)
    best_val = max((m["val_top1"] for m in history), default=0.0)
    if n >= 3 and best_val <= 1.5 * chance and history[-1]["train_top1"] <= 1.5 * chance:
        out.append(Diagnostic("not_learning", "error", n,
                              f"validation top-1 {best_val:.3f} is at chance ({chance:.3f}) after {n} "
                              "epochs: check the "
                              "labels and the pipeline (`edgefit train --sanity`), then the learning rate",
                              {"best_val_top1": best_val, "chance": chance}))
        return out
    k = max(3, n // 4)
    if n >= 2 * k:
        window = history[-k:]
        early = history[-2 * k]["train_loss"]
        late = window[-1]["train_loss"]
        lr_share = min(m["lr"] for m in window) / max(m["lr"] for m in history)
        still_poor = (train_check or {}).get("clean", window[-1]["train_top1"]) < 0.9
        if _finite(early) and _finite(late) and early - late < PLATEAU_GAIN * early and still_poor and lr_share > 0.1:
            out.append(Diagnostic("plateau", "warning", n - k + 1,
                                  f"the training loss stayed near {late:.3f} for the last {k} epochs "
                                  "at a learning rate "
                                  f"still above {lr_share:.0%} of its peak while training top-1 is "
                                  "low: the learning rate "
                                  f"({lr:.3g}) is too low, the optimizer wrong, or regularization too strong; try --lr "
                                  f"{lr * 3:.3g} or --optimizer adamw", {"from": early, "to": late}))
    if train_check:
        clean = train_check["clean"]
        if clean - val_top1 > OVERFIT_GAP:
            out.append(Diagnostic("overfitting", "warning", None,
                                  f"training top-1 {clean:.3f} (without augmentation) vs validation "
                                  f"{val_top1:.3f}: the "
                                  "model memorises the training images; more data, stronger augmentation, a smaller "
                                  "variant or fewer epochs", {"train_top1": clean, "val_top1": val_top1}))
        elif clean < UNDERFIT_TRAIN and val_top1 < UNDERFIT_TRAIN:
            out.append(Diagnostic("underfitting", "warning", None,
                                  f"training top-1 is only {clean:.3f} (validation {val_top1:.3f}): "
                                  "the model cannot fit "
                                  "the training images; train longer (--epochs), a wider variant, less augmentation or "
                                  "regularization", {"train_top1": clean, "val_top1": val_top1}))
        if val_top1 > clean + 0.10:
            out.append(Diagnostic("suspiciously_good", "warning", None,
                                  f"validation top-1 {val_top1:.3f} is above training top-1 {clean:.3f}: validation "
                                  "images may leak from training or be easier; run `edgefit doctor`",
                                  {"train_top1": clean, "val_top1": val_top1}))
    if val_top1 >= 0.995 and n_val < SMALL_VAL:
        out.append(Diagnostic("suspiciously_good", "warning", None,
                              f"validation top-1 {val_top1:.3f} on only {n_val} images: too few to trust (one mistake "
                              f"is {1 / max(1, n_val):.1%}); hold out more images, and check for "
                              "leaks (`edgefit doctor`)",
                              {"val_top1": val_top1, "val_images": n_val}))
    return out


ADVICE = {"flip": " (orientation-sensitive classes?): use --flip off",
          "crop": " (the crop cuts away what tells the classes apart?): use --crop off"}


def augmentation_findings(train_check: dict | None, val_top1: float) -> list[Diagnostic]:
    """The rule of thumb: the error on augmented training images should not exceed the validation error by
    much; the transform that hurts most is named."""
    if not train_check or "all" not in train_check:
        return []
    aug_err, val_err = 1 - train_check["all"], 1 - val_top1
    if aug_err <= val_err + 0.10 or aug_err <= 1.5 * val_err:
        return []
    per = {t: train_check["clean"] - train_check[t] for t in ("crop", "flip", "jitter") if t in train_check}
    worst = max(per, key=per.get) if per else "augmentation"
    return [Diagnostic("augmentation_too_strong", "warning", None,
                       f"the model gets {aug_err:.1%} of augmented training images wrong but only {val_err:.1%} of "
                       f"validation images: the augmentation makes the data invalid; '{worst}' costs most "
                       f"({per.get(worst, 0):.1%} of training top-1)" + ADVICE.get(worst, ""),
                       {"augmented_error": aug_err, "val_error": val_err, "drop_by_transform": per})]


def gradient_findings(history: list[dict]) -> list[Diagnostic]:
    """A layer group whose gradient/weight scale is out of line with the others in GRAD_EPOCHS epochs running
    (non-finite: at once). One epoch is not enough: a freshly initialised classifier (std 0.01) has tiny
    weights, so its ratio is far above the others' until its weights have grown."""
    out, seen, streak = [], set(), {}
    for m in history:
        ratios = m.get("grad_weight_ratio") or {}
        finite = sorted(v for v in ratios.values() if _finite(v) and v > 0)
        if len(finite) < 3:
            continue
        med = finite[len(finite) // 2]
        for group, v in ratios.items():
            code = None
            if not _finite(v) or v > GRAD_SPREAD * med:
                code = "exploding_gradients"
            elif v < med / GRAD_SPREAD:
                code = "vanishing_gradients"
            for c in ("exploding_gradients", "vanishing_gradients"):
                streak[c, group] = streak.get((c, group), 0) + 1 if c == code else 0
            persistent = code and (streak[code, group] >= GRAD_EPOCHS or not _finite(v))
            if persistent and (code, group) not in seen:
                seen.add((code, group))
                out.append(Diagnostic(code, "warning", m["epoch"],
                                      f"layer group {group}: gradient/weight scale {v:.2g} vs a "
                                      f"median of {med:.2g} over "
                                      f"the groups in epoch {m['epoch']}" + (": it barely learns (frozen by a poor "
                                      "initialisation or saturated activations)" if code == "vanishing_gradients" else
                                      ": its updates are out of scale; lower the learning rate"),
                                      {"group": group, "ratio": v, "median": med}))
    return out


def diagnose(history: list[dict], events: list[dict], num_classes: int, val_top1: float, n_val: int,
             train_check: dict | None, lr: float, batch: int) -> list[Diagnostic]:
    return (loss_findings(history, events, lr, batch) + accuracy_findings(history, num_classes, val_top1, n_val,
                                                                          train_check, lr)
            + augmentation_findings(train_check, val_top1) + gradient_findings(history))
