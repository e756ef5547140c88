import json
from pathlib import Path

import pytest
import torch

from edgefit.train import TrainConfig, train

from .conftest import run_cli

VARIANT = "mobilenet_v2_0.35_96"
SUMMARY_KEYS = {"variant", "classes", "val_top1", "per_class_accuracy", "confusion_matrix", "images_skipped",
                "epochs_run", "wall_time_s", "train_images_per_sec", "seconds_per_epoch"}


def _cfg(data, out, **kw):
    base = dict(variant=VARIANT, data=str(data), weights="none", epochs=6, batch_size=8, out=str(out), seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_falls_accuracy_beats_chance_and_summary(colours, tmp_path):
    # lr given: on 49 images from scratch the range test is inconclusive and its fallback (0.05) diverges for
    # some seeds (2 of 4 seeds before streaming too); this test is about the pipeline, not that choice
    r = train(_cfg(colours, tmp_path / "run", lr=0.01), quiet=True)
    s = r.summary
    assert SUMMARY_KEYS <= set(s)
    history = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == s["epochs_run"] == 6
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert s["val_top1"] > 0.6  # chance is 1/3
    assert s["classes"] == ["c0", "c1", "c2"]
    assert sum(s["images_skipped"].values()) == 2 and any("broken.png" in f for f in s["skipped_files"])
    assert len(s["confusion_matrix"]) == 3
    assert sum(map(sum, s["confusion_matrix"])) == s["images"]["val"] - s["images_skipped"].get("val", 0)
    for name in ("config.yaml", "split.json", "best.pt", "last.pt", "curves.png", "summary.json"):
        assert (r.run_dir / name).is_file(), name
    ck = torch.load(r.run_dir / "best.pt", weights_only=True)
    assert ck["variant"] == VARIANT and ck["classes"] == s["classes"] and ck["preprocess"]["resolution"] == 96


def test_resume_continues_exactly(colours, tmp_path):
    straight = train(_cfg(colours, tmp_path / "a", epochs=3), quiet=True)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(colours, tmp_path / "b", epochs=3), interrupt_after=1, quiet=True)
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 1
    resumed = train(_cfg(colours, tmp_path / "b", epochs=3), resume=True, quiet=True)

    def strip(path):
        return [{k: v for k, v in json.loads(line).items() if k not in ("images_per_sec", "epoch_seconds")}
                for line in Path(path).read_text().splitlines()]

    assert strip(straight.run_dir / "metrics.jsonl") == strip(resumed.run_dir / "metrics.jsonl")
    a = torch.load(straight.run_dir / "last.pt", weights_only=True)["model"]
    b = torch.load(resumed.run_dir / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_dir_needs_resume(colours, tmp_path):
    train(_cfg(colours, tmp_path / "run", epochs=1), quiet=True)
    r = run_cli("train", "--variant", VARIANT, "--data", colours, "--weights", "none", "--epochs", "1",
                "--out", tmp_path / "run")
    assert r.returncode == 2 and "--resume" in r.stderr
    r = run_cli("train", "--variant", VARIANT, "--data", colours, "--weights", "none", "--out", tmp_path / "new",
                "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr


def test_sanity_check_cli(colours):
    r = run_cli("train", "--variant", VARIANT, "--data", colours, "--weights", "none", "--sanity", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["passed"] and d["final_accuracy"] == 1.0 and d["final_loss"] < d["initial_loss"]


def test_weights_path_and_mismatch(colours, tmp_path):
    first = train(_cfg(colours, tmp_path / "a", epochs=1), quiet=True)
    again = train(_cfg(colours, tmp_path / "b", epochs=1, weights=str(first.best_checkpoint)), quiet=True)
    assert again.summary["weights"] == str(first.best_checkpoint)
    r = run_cli("train", "--variant", "mobilenet_v1_0.25_128", "--data", colours, "--weights",
                first.best_checkpoint, "--out", tmp_path / "c")
    assert r.returncode == 2 and "does not match this architecture" in r.stderr


def _seed_hub_cache(hf_home: Path, tag: str) -> dict:
    import timm
    from safetensors.torch import save_file

    repo = f"models--timm--{tag}"
    snap = hf_home / "hub" / repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (hf_home / "hub" / repo / "refs").mkdir()
    (hf_home / "hub" / repo / "refs" / "main").write_text("0" * 40)
    torch.manual_seed(123)
    sd = {k: v.contiguous() for k, v in timm.create_model(tag.split(".")[0]).state_dict().items()}
    save_file(sd, str(snap / "model.safetensors"))
    return sd


def test_imagenet_weights_from_preseeded_cache(colours, tmp_path):
    sd = _seed_hub_cache(tmp_path / "hf", "mobilenetv3_small_075.lamb_in1k")
    env = {"HF_HOME": str(tmp_path / "hf")}
    r = run_cli("train", "--variant", "mobilenet_v3_small_0.75_96", "--data", colours, "--weights", "imagenet",
                "--strategy", "head", "--epochs", "2", "--out", tmp_path / "run", "--json", env=env)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["weights"] == "imagenet" and s["strategy"] == "head"
    ck = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert torch.equal(ck["state_dict"]["conv_stem.weight"], sd["conv_stem.weight"])  # frozen backbone = seeded
    assert ck["state_dict"]["classifier.weight"].shape[0] == 3


def test_imagenet_weights_fail_fast_when_not_cached(colours, tmp_path):
    env = {"HF_HOME": str(tmp_path / "empty-hf")}
    r = run_cli("train", "--variant", "mobilenet_v3_small_0.75_96", "--data", colours, "--weights", "imagenet",
                "--out", tmp_path / "run", env=env)  # offline (conftest): the failure comes without a retry loop
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "models--timm--mobilenetv3_small_075.lamb_in1k" in line and "--weights none" in line
    assert len(line.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_no_weights_exist_for_variant(colours):
    r = run_cli("train", "--variant", "mobilenet_v1_0.25_128", "--data", colours, "--weights", "imagenet")
    assert r.returncode == 2 and "no ImageNet weights exist" in r.stderr


def test_zoo_weight_tags_build_the_catalog_architecture():
    """Every variant with weights: timm's pretrained architecture equals the zoo's network."""
    import timm

    from edgefit import zoo

    for v in zoo.variants():
        if not v.weights:
            continue
        with torch.device("meta"):
            ours = zoo.build_model(v, 7).state_dict()
            theirs = timm.create_model(v.weights, pretrained=False, num_classes=7).state_dict()
        assert {k: tuple(t.shape) for k, t in ours.items()} == {k: tuple(t.shape) for k, t in theirs.items()}, v.name


def test_strategy_rules():
    from edgefit.errors import BadInput
    from edgefit.train.config import resolve_strategy

    assert resolve_strategy("auto", "imagenet", 10)[0] == "head"
    assert "trouble" in resolve_strategy("auto", "imagenet", 10)[1]
    assert resolve_strategy("auto", "imagenet", 100)[0] == "partial"
    assert resolve_strategy("auto", "imagenet", 1000)[0] == "full"
    assert resolve_strategy("auto", "none", 10)[0] == "full"
    with pytest.raises(BadInput):
        resolve_strategy("head", "none", 10)
