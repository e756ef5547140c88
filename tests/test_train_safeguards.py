"""The training loop's safeguards on tiny networks: the rollback after a diverged epoch and the learning-rate
range test's fallback below the rate that blew up."""
import copy

import pytest
import torch
from torch import nn

from edgefit.train import loop
from edgefit.train.lr_range import range_test
from edgefit.train.progress import Reporter


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def _batches(n: int, seed: int, shuffle_labels: bool = False, scale: float = 1.0) -> list:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 3, 16, 16, generator=g) * 0.3 + nn.functional.one_hot(y, 3).float().view(n, 3, 1, 1)
    if shuffle_labels:
        y = y[torch.randperm(n, generator=g)]
    return [(x[i:i + 8] * scale, y[i:i + 8]) for i in range(0, n, 8)]


def test_a_diverged_epoch_restarts_from_the_lowest_loss_weights(tmp_path):
    """Epoch 2 trains on shuffled labels (its loss rises, not enough to count as divergence), epoch 3's first
    attempt on a corrupt batch (NaN pixels: the loss is not finite): the retry starts from the weights after
    epoch 1, not from epoch 3's damaged start."""
    model = _net()
    clean, shuffled = _batches(48, 0), _batches(48, 1, shuffle_labels=True)
    garbage = _batches(48, 2, scale=float("nan"))
    calls, after, seen = {}, {}, {}

    def train_loader(epoch, aug):
        calls[epoch] = calls.get(epoch, 0) + 1
        if epoch == 2 and calls[epoch] == 2:
            seen["retry"] = copy.deepcopy(model.state_dict())  # the weights the retry starts from
        return {1: shuffled, 2: garbage if calls[epoch] == 1 else clean}.get(epoch, clean)

    def on_epoch(m):
        after[m["epoch"]] = copy.deepcopy(model.state_dict())

    fit = loop.Fit(model=model, train_loader=train_loader, val_loader=clean,
                   phases=[loop.Phase("train", "full", 4, 0.05, "sgd")], num_classes=3, device=torch.device("cpu"),
                   run_dir=tmp_path, seed=0, weight_decay=0.0,
                   label_smoothing=0.0, warmup_epochs=0.0, patience=10, save_best=lambda val: None,
                   reporter=Reporter(enabled=False), augment={"flip": [False, "off"], "jitter": [False, "off"]},
                   on_epoch=on_epoch)
    state = loop.run(fit)
    losses = [m["train_loss"] for m in state["history"]]
    assert losses[1] > losses[0], "precondition: epoch 2 is worse than epoch 1"
    [event] = [e for e in state["events"] if e["kind"] == "diverged"]
    assert event["epoch"] == 3 and event["recovered"] and event["restored_epoch"] == 1
    assert all(torch.equal(seen["retry"][k], after[1][k]) for k in after[1])
    assert not all(torch.equal(after[2][k], after[1][k]) for k in after[1])
    assert len(losses) == 4


def test_inconclusive_range_test_stays_a_third_below_the_rate_that_blew_up():
    """Random labels: the loss cannot fall (inconclusive), and it blows up as the rate climbs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))  # no batch norm to absorb the rate
    batches = _batches(640, 3, shuffle_labels=True, scale=1.2)  # fresh noise every step: nothing to learn
    r = range_test(model, batches, "sgd", 0.0, torch.device("cpu"), steps=80)
    assert "inconclusive" in r.reason and r.steps < 80, r.reason
    assert "blew up" in r.reason and r.lr == pytest.approx(max(0.01, min(0.05, r.lrs[-1] / 3)))
    assert r.lr < 0.05, "precondition: the loss blew up below 3 x the fallback rate, so the cap applies"
