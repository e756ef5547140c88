"""Benchmark: edgefit's training throughput against a plain PyTorch loop on the same model, data and threads.

The demo data (10 classes x 200 images, 96 px; `edgefit demo-data`), mobilenet_v2_0.35_96 from scratch, batch 32,
SGD with Nesterov momentum, label smoothing 0.1, channels-last, random resized crop (scale 0.5-1), no flip or
jitter, this process's torch threads. `edgefit train` runs as a user runs it (`--lr` given, so no range test);
its images/s are read from metrics.jsonl. The plain loop below is the 20 lines a practitioner writes: the
training images decoded once into memory, a random resized crop and normalization per image, forward, backward,
step. Both: the median images/s of epochs 2..E (epoch 1 warms up). Target: edgefit >= 0.9 x the plain loop.
Writes bench/results/train_throughput.json.

    .venv/bin/python bench/train_throughput.py [--epochs 5]
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from record import save  # noqa: E402

EPOCHS = int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 5
VARIANT, BATCH, LR = "mobilenet_v2_0.35_96", 32, 0.05


def plain_loop(split: dict, epochs: int) -> list[float]:
    """Images/s of each epoch of the plain loop (the training split edgefit made, so the same images)."""
    import torch
    from torch import nn
    from torchvision.transforms import v2 as T

    from edgefit import zoo
    from edgefit.data.pipeline import Preprocess, _decode

    torch.manual_seed(0)
    model = zoo.build_model(zoo.get_variant(VARIANT), len(split["classes"])).to(memory_format=torch.channels_last)
    pp = Preprocess.of(model, 96)
    images = [_decode(Path(split["root"]) / rel, pp) for rel, _ in split["files"]["train"]]
    labels = torch.tensor([label for _, label in split["files"]["train"]])
    aug = T.Compose([T.RandomResizedCrop(96, scale=(0.5, 1.0), antialias=True), T.ToDtype(torch.float32, scale=True),
                     T.Normalize(list(pp.mean), list(pp.std))])
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=4e-5)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    rates = []
    for _ in range(epochs):
        model.train()
        order, t, seen = torch.randperm(len(images)), time.perf_counter(), 0
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            x = torch.stack([aug(images[j]) for j in idx]).to(memory_format=torch.channels_last)
            loss = loss_fn(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(idx)
        rates.append(seen / (time.perf_counter() - t))
    return rates


def main() -> None:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "demo", Path(tmp) / "run"
        edgefit = [sys.executable, "-m", "edgefit"]
        subprocess.run([*edgefit, "demo-data", str(data), "--classes", "10", "--per-class", "200", "--size", "96"],
                       check=True, capture_output=True)
        r = subprocess.run([*edgefit, "train", "--variant", VARIANT, "--data", str(data), "--weights", "none",
                            "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--lr", str(LR), "--optimizer", "sgd",
                            "--flip", "off", "--jitter", "0", "--patience", str(EPOCHS), "--out", str(run), "--json"],
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr[-2000:])
        ours = [json.loads(line)["images_per_sec"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        split = json.loads((run / "split.json").read_text())
        plain = plain_loop(split, EPOCHS)
    from edgefit.benchmark.machine import cpu_model

    e, p = statistics.median(ours[1:]), statistics.median(plain[1:])
    save("train_throughput", {
        "benchmark": f"edgefit train vs a plain PyTorch loop: {VARIANT} from scratch on demo data (10 x 200, 96 px), "
                     f"batch {BATCH}, SGD, {EPOCHS} epochs, median images/s of epochs 2..{EPOCHS}",
        "cpu": cpu_model(), "threads": torch.get_num_threads(),
        "edgefit_images_per_sec": round(e, 1), "plain_loop_images_per_sec": round(p, 1),
        "ratio": round(e / p, 3), "target_ratio": 0.9,
        "edgefit_epochs": [round(v, 1) for v in ours], "plain_epochs": [round(v, 1) for v in plain]})


if __name__ == "__main__":
    main()
