"""torchrun data parallelism, for real: 2 CPU processes on gloo.

One launch trains one step (the first epoch: the whole training split is one global batch of 24, 12 per
rank) and stops as if killed; its weights must equal one single-process step on the whole batch. A second
launch resumes the run through the CLI under torchrun (as `edgefit build --nproc 2` does) to the end, and only
rank 0 writes and prints."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from edgefit.train import TrainConfig

from .conftest import make_colours

VARIANT = "mobilenet_v2_0.35_96"
LAUNCH_ONE_STEP = """
import sys
from edgefit.train import TrainConfig, train
cfg = TrainConfig(**__import__("json").loads(sys.argv[1]))
try:
    train(cfg, interrupt_after=1, quiet=True)
except KeyboardInterrupt:
    pass
"""


def _torchrun(*args, cwd, nproc=2):
    exe = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(exe), "--standalone", "--nproc_per_node", str(nproc), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=400, env=env)


def _pretrained(path: Path) -> Path:
    """A state dict standing in for pretrained weights, so that training starts with the classifier warm-up
    (frozen backbone, batch norms in eval mode: per-rank statistics cannot differ from the whole batch's)."""
    from safetensors.torch import save_file

    from edgefit import zoo
    from edgefit.weights import build_with_weights

    torch.manual_seed(5)
    model, _ = build_with_weights(zoo.get_variant(VARIANT), 3, "none")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_ddp_step_equals_whole_batch_step_and_torchrun_run_resumes(tmp_path):
    (tmp_path / "data").mkdir()
    data = make_colours(tmp_path / "data", per_class=10, noise=30, seed=4)  # 8 train + 2 val per class
    weights = _pretrained(tmp_path / "w.safetensors")
    base = dict(variant=VARIANT, data=str(data), weights=str(weights), strategy="full", epochs=2, batch_size=24,
                lr=0.01, flip="on", jitter=0.3, seed=3)
    ddp_out = tmp_path / "ddp"
    script = tmp_path / "one_step.py"
    script.write_text(LAUNCH_ONE_STEP)
    r = _torchrun(script, json.dumps({**base, "out": str(tmp_path / "single")}), cwd=tmp_path, nproc=1)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _torchrun(script, json.dumps({**base, "out": str(ddp_out)}), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    one = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    two = torch.load(ddp_out / "last.pt", weights_only=True)
    assert one["step"] == two["step"] == 1 and one["phase"] == two["phase"] == 0  # one step of the warm-up
    diffs = {k: float((one["model"][k].float() - two["model"][k].float()).abs().max()) for k in one["model"]}
    assert max(diffs.values()) < 1e-5, sorted(diffs.items(), key=lambda kv: -kv[1])[:3]
    from safetensors.torch import load_file

    start = load_file(str(weights))["classifier.weight"]
    assert float((one["model"]["classifier.weight"] - start).abs().max()) > 1e-3  # the step did move the weights
    assert abs(one["history"][0]["train_loss"] - two["history"][0]["train_loss"]) < 1e-5  # the global batch's loss

    # the second launch as `edgefit build --nproc 2` runs its training stage: `torchrun -m edgefit train --json`
    from edgefit.data.folder import scan
    from edgefit.train.launch import train_with_torchrun

    result = train_with_torchrun(TrainConfig(**base, out=str(ddp_out)), 2, resume=True, quiet=True,
                                 split_digest=scan(data, seed=3).digest())
    assert result.summary["world_size"] == 2 and result.val_top1 == result.summary["val_top1"]
    summary = json.loads((ddp_out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs_run"] == 2
    assert len((ddp_out / "metrics.jsonl").read_text().splitlines()) == 2
    import yaml

    assert yaml.safe_load((ddp_out / "config.yaml").read_text())["resolved"]["world_size"] == 2
    assert sorted(p.name for p in ddp_out.iterdir() if not p.name.startswith(".")) == sorted(
        ["best.pt", "config.json", "config.yaml", "curves.png", "last.pt", "metrics.jsonl", "split.json",
         "summary.json"])
