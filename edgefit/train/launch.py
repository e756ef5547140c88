"""`edgefit build --nproc N`: the build's training stage as `torchrun --standalone --nproc_per_node N -m edgefit
train ...`, the same command a user would type, then the run directory read back."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from ..errors import BadInput
from .config import TrainConfig

# TrainConfig fields `edgefit train` does not expose: passed on only as their defaults
NOT_OPTIONS = ("weight_decay", "label_smoothing", "warmup_epochs", "data_checks", "extra")


def train_args(cfg, resume: bool) -> list[str]:
    """`edgefit train` options equivalent to `cfg`: every TrainConfig field is the option of the same name
    (`batch_size` -> `--batch-size`; tests/test_joint_search.py checks the command has each one), or in NOT_OPTIONS,
    where it must be the default."""
    args = []
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if f.name in NOT_OPTIONS:
            if value != getattr(TrainConfig(variant="", data=""), f.name):
                raise ValueError(f"TrainConfig.{f.name}={value!r} has no `edgefit train` option to pass it on")
            continue
        if value is not None:
            args += [option(f.name), value]
    return [str(a) for a in args] + (["--resume"] if resume else [])


def option(field_name: str) -> str:
    """The `edgefit train` option of a TrainConfig field."""
    return "--" + field_name.replace("_", "-")


def train_with_torchrun(cfg, nproc: int, resume: bool = False, quiet: bool = False, split_digest: str | None = None):
    """Train `cfg` on `nproc` local processes under torchrun; the TrainResult of the run directory. With
    `split_digest`, the run must have used exactly that split (the caller's)."""
    from . import TrainResult

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "edgefit", "train", *train_args(cfg, resume), "--json"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE if quiet else None, text=True)
    if r.returncode:
        last = (r.stderr or "").strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        if r.returncode == 2:
            raise BadInput(f"training on {nproc} processes: {last[0]}")
        raise RuntimeError(f"torchrun training on {nproc} processes failed (exit {r.returncode}): {last[0]}")
    run_dir = Path(cfg.out)
    summary = json.loads((run_dir / "summary.json").read_text())
    printed = json.loads(r.stdout)  # one JSON document: rank 0 alone prints
    if printed["split_digest"] != summary["split_digest"]:
        raise RuntimeError(f"torchrun printed another run than the one in {run_dir}")
    if split_digest is not None and summary["split_digest"] != split_digest:
        raise RuntimeError(f"the torchrun training in {run_dir} used another split than the build's")
    return TrainResult(run_dir, summary)
