"""Evaluation: loss, top-1, per-class accuracy and the confusion matrix."""
from __future__ import annotations

import torch


@torch.no_grad()
def evaluate(model, loader, device, num_classes: int, criterion=None) -> dict:
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    loss_sum, n = 0.0, 0
    for x, y in loader:
        x = x.to(device, memory_format=torch.channels_last) if x.ndim == 4 else x.to(device)
        y = y.to(device)
        logits = model(x)
        if criterion is not None:
            loss_sum += float(criterion(logits, y)) * len(y)
        pred = logits.argmax(1)
        confusion += torch.bincount((y * num_classes + pred).cpu(), minlength=num_classes ** 2).view(
            num_classes, num_classes)
        n += len(y)
    return summarize(confusion, loss_sum / max(n, 1))


def summarize(confusion: torch.Tensor, loss: float) -> dict:
    total = int(confusion.sum())
    correct = int(confusion.diag().sum())
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1).float()).tolist()
    return {"loss": loss, "top1": correct / total if total else 0.0, "n": total,
            "per_class": per_class, "confusion": confusion.tolist()}
