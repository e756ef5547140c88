"""The learning-rate range test (Smith 2017; fastai's lr_find): train a copy of the model for a few dozen
steps while the learning rate grows exponentially, watch the smoothed loss, and take a peak rate a safe
rate at the point where the smoothed loss is lowest, before it blows up (a short test lags: the loss keeps
falling for a while after the rate that caused it, so the minimum itself is already the conservative end;
measured on two data sets, bench/results/train_defaults.json). Used before training from scratch,
where no published rate fits every data set."""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

START_LR, END_LR = 1e-5, 2.0
SMOOTHING = 0.9
STOP_FACTOR = 4.0  # stop once the smoothed loss exceeds its minimum by this factor
SAFETY = 1.0  # the chosen rate: the rate at the loss minimum divided by this (minimum/10 measured too low)
CLAMP = {"sgd": (1e-2, 0.5), "adamw": (1e-5, 1e-2)}
CONCLUSIVE_DROP = 0.10  # the smoothed loss must fall this far below where it started for the test to count
# When it does not (from scratch on harder data the loss barely moves in a few dozen steps), the rate that
# trained both generated sets of bench/results/lr_sweep.json well (SGD, cosine, 15 epochs):
FALLBACK = {"sgd": 0.05, "adamw": 1e-3}
# ... unless the test's loss blew up (STOP_FACTOR) at a rate not far above it: then a third of that rate, kept
# within CLAMP. A third, not Smith's order of magnitude: from scratch on the demo shapes the loss blew up at 0.27,
# a tenth (0.027) trained to 0.61 / 0.49 val top-1 in 15 epochs (seeds 0 / 1), the fallback 0.05 (under a third)
# to 0.77 / 0.62, and 0.1 (lr_sweep.json) still trained both generated sets (bench/results/train_defaults.json).
BLOWUP_MARGIN = 3.0


@dataclass(frozen=True)
class RangeTest:
    lr: float  # the chosen peak learning rate
    lr_at_min: float
    steps: int
    lrs: list
    losses: list  # smoothed
    reason: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lrs"] = [float(f"{v:.4g}") for v in self.lrs]
        d["losses"] = [round(v, 4) for v in self.losses]
        return d


def range_test(model: nn.Module, batches, optimizer: str, weight_decay: float, device, steps: int = 80,
               label_smoothing: float = 0.1) -> RangeTest:
    """`batches`: an iterable of (x, y) yielding at least `steps` batches (cycled if shorter). The model
    itself is not changed (a copy trains); torch's RNG is restored afterwards, so runs stay repeatable."""
    import timm.optim

    from .model_parts import set_trainable, train_mode

    rng = torch.get_rng_state()
    m = copy.deepcopy(model).to(device, memory_format=torch.channels_last)
    set_trainable(m, "full")
    train_mode(m)
    opt = timm.optim.create_optimizer_v2(m, opt="sgd" if optimizer == "sgd" else "adamw", lr=START_LR,
                                         weight_decay=weight_decay, momentum=0.9)
    crit = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    mult = (END_LR / START_LR) ** (1 / max(1, steps - 1))
    lrs, losses = [], []
    avg, best, lr = 0.0, math.inf, START_LR
    it = iter(batches)
    for step in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(batches)
            x, y = next(it)
        for g in opt.param_groups:
            g["lr"] = lr
        x = x.to(device, memory_format=torch.channels_last)
        loss = crit(m(x), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            break
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        smooth = avg / (1 - SMOOTHING ** (step + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = min(best, smooth)
        if step > 5 and smooth > STOP_FACTOR * best:
            break
        lr *= mult
    torch.set_rng_state(rng)
    lo, hi = CLAMP["sgd" if optimizer == "sgd" else "adamw"]
    if len(losses) < 5:
        return RangeTest(lo, lo, len(losses), lrs, losses, "the loss diverged at once; taking the lowest sane rate")
    i = min(range(len(losses)), key=losses.__getitem__)
    start = losses[min(4, len(losses) - 1)]
    drop = 1 - losses[i] / start
    if drop < CONCLUSIVE_DROP:
        fb = FALLBACK["sgd" if optimizer == "sgd" else "adamw"]
        blew_up = len(losses) < steps or losses[-1] > STOP_FACTOR * losses[i]  # stopped early, or at the end
        why = f"the default peak rate {fb:g}"
        if blew_up and lrs[-1] / BLOWUP_MARGIN < fb:
            fb = max(lo, lrs[-1] / BLOWUP_MARGIN)
            why = (f"the loss blew up at lr {lrs[-1]:.3g}, so the peak rate is a third of that"
                   + (f", clamped to {lo:g}" if fb == lo else "") + f": {fb:.3g}")
        return RangeTest(fb, lrs[i], len(losses), lrs, losses,
                         f"learning-rate range test inconclusive (the smoothed loss fell only {drop:.1%} in "
                         f"{len(losses)} steps, {START_LR:g} to {lrs[-1]:.3g}); {why}")
    chosen = min(hi, max(lo, lrs[i] / SAFETY))
    reason = (f"learning-rate range test ({len(losses)} steps, {START_LR:g} to {lrs[-1]:.3g}): lowest smoothed loss "
              f"{losses[i]:.3f} at lr {lrs[i]:.3g}; peak lr = that / {SAFETY:g}"
              + (f", clamped to [{lo:g}, {hi:g}]" if chosen != lrs[i] / SAFETY else ""))
    return RangeTest(chosen, lrs[i], len(losses), lrs, losses, reason)
