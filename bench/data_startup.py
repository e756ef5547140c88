"""Benchmark: data start-up (folder scan to the first training batch) and peak memory, 5,000 vs 50,000 images.

Generates JPEG folders (10 classes, 64 px, random content; kept under runs/bench-data/ for reruns), then
in a fresh process per size: scan + split, the training ImageSet and loader as `edgefit train` builds them
for mobilenet_v2_0.35_96 (96 px), time to the first batch of 32, then 50 more batches. Peak RSS is the
training process's (ru_maxrss; torch and torchvision imported first, about 0.8 GB of it, reported
apart) and the largest loader worker's (RUSAGE_CHILDREN). Writes
bench/results/data_startup.json; `--label before` with PYTHONPATH pointing at an older checkout records
bench/results/data_startup_before.json.

    .venv/bin/python bench/data_startup.py [--sizes 5000,50000] [--label NAME]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

MEASURE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from edgefit.data.folder import scan
from edgefit.data.pipeline import Augment, ImageSet, Preprocess, loader
t_import = time.perf_counter()
import torchvision.transforms.v2  # what the first batch imports, so that its memory is not counted as data's
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t_import = time.perf_counter()
split = scan(sys.argv[1], seed=0)
t_scan = time.perf_counter()
pp = Preprocess(resolution=96, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
ds = ImageSet(split, "train", pp, Augment(flip=True, jitter=0.0))
batches = iter(loader(ds, 32, True, 0, 0))
next(batches)
t_first = time.perf_counter()
rss_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
for _ in range(50):
    next(batches)
t_more = time.perf_counter()
del batches
print(json.dumps({"train_images": len(split.files["train"]), "in_memory": bool(getattr(ds, "in_memory", True)),
                  "workers": getattr(ds, "workers", 0),
                  "scan_s": round(t_scan - t_import, 2), "to_first_batch_s": round(t_first - t_import, 2),
                  "next_50_batches_s": round(t_more - t_first, 2),
                  "rss_mb_after_imports": round(rss_import),
                  "peak_rss_mb_at_first_batch": round(rss_first),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}))
"""


def make(folder: Path, n: int) -> Path:
    import numpy as np
    from PIL import Image

    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(0)
    for i in range(n):
        c = i % 10
        d = folder / f"class{c}"
        d.mkdir(parents=True, exist_ok=True)
        base = np.full((64, 64, 3), (c * 25, 255 - c * 25, (c * 70) % 255), np.uint8)
        img = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"{i}.jpg", quality=90)
    done.write_text("")
    return folder


def main() -> None:
    from record import save

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="5000,50000")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    rows = []
    for n in map(int, args.sizes.split(",")):
        folder = make(ROOT / "runs" / "bench-data" / f"jpeg-{n}", n)
        r = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True, timeout=3600,
                           cwd=folder)  # not the checkout: PYTHONPATH picks the edgefit measured
        if r.returncode:
            raise SystemExit(r.stderr[-3000:])
        rows.append({"images": n, **json.loads(r.stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    save("data_startup" + (f"_{args.label}" if args.label else ""),
         {"what": "folder scan to the first training batch (32 images, 96 px), then 50 batches", "rows": rows})


if __name__ == "__main__":
    main()
