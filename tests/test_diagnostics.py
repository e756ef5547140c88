"""Training diagnosed by its symptoms: an absurd learning rate, a leaking split, mirror-image classes."""
import json
import math
import shutil

import pytest
import torch
from PIL import Image, ImageDraw

from edgefit.train import TrainConfig, train

from .conftest import make_colours, run_cli

VARIANT = "mobilenet_v2_0.35_96"


def _codes(summary: dict) -> set[str]:
    return {d["code"] for d in summary["diagnostics"]}


def test_absurd_learning_rate_is_diagnosed_and_does_not_crash(colours, tmp_path):
    r = run_cli("train", "--variant", VARIANT, "--data", colours, "--weights", "none", "--epochs", "3",
                "--batch-size", "8", "--lr", "8", "--out", tmp_path / "run", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert _codes(s) & {"loss_diverged", "loss_bouncing"}
    d = next(d for d in s["diagnostics"] if d["code"] in ("loss_diverged", "loss_bouncing"))
    assert "learning rate" in d["message"] and d["severity"] in ("warning", "error")
    assert s["decisions"]["backoffs"], "the loop restarted at a lower rate"
    assert all(b["new_lr"] < b["lr"] for b in s["decisions"]["backoffs"] if b.get("recovered"))
    assert (tmp_path / "run" / "best.pt").is_file()
    history = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(set(m["grad_weight_ratio"]) for m in history if math.isfinite(m["train_loss"]))


def test_validation_images_copied_from_training_are_a_leak(tmp_path):
    (tmp_path / "src").mkdir()
    src = make_colours(tmp_path / "src", per_class=16, noise=40, seed=3)
    root = tmp_path / "split"
    for cls in ("c0", "c1", "c2"):
        files = sorted((src / cls).iterdir())
        (root / "train" / cls).mkdir(parents=True)
        (root / "val" / cls).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / "train" / cls / f.name)
        for f in files[:4]:  # every validation image is also a training image
            shutil.copy(f, root / "val" / cls / f"v{f.name}")
    s = train(TrainConfig(variant=VARIANT, data=str(root), weights="none", epochs=1, batch_size=8,
                          out=str(tmp_path / "run")), quiet=True).summary
    leak = next(f for f in s["data_checks"] if f["code"] == "leak")
    assert leak["count"] == 12 and leak["severity"] == "error"
    good = next(d for d in s["diagnostics"] if d["code"] == "suspiciously_good")
    assert good["severity"] == "error" and "leak" in json.dumps(good["evidence"])


def _arrows(root, per_class: int, seed: int):
    """Two classes that are each other's mirror image: a wedge pointing left or right, jittered in place."""
    g = torch.Generator().manual_seed(seed)
    for name, sign in (("left", -1), ("right", 1)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            cx, cy = (16 + torch.randint(-4, 5, (2,), generator=g)).tolist()
            r = int(torch.randint(8, 12, (1,), generator=g))
            im = Image.new("RGB", (32, 32), (30, 30, 30))
            ImageDraw.Draw(im).polygon([(cx + sign * r, cy), (cx - sign * r, cy - r), (cx - sign * r, cy + r)],
                                       fill=(230, 230, 230))
            im.save(root / name / f"{i}.png")
    return root


@pytest.mark.slow
def test_flip_is_switched_off_for_mirror_image_classes(tmp_path):
    data = _arrows(tmp_path / "arrows", per_class=150, seed=0)
    # 18 epochs: the decision may wait until epoch 6 (a third of the run). From scratch, the network can read as
    # chance in eval mode for its first epochs (batch-norm running statistics lag: val top-1 0.50 at train accuracy
    # 0.85 on an AMD EPYC host); with 12 epochs the last chance was epoch 4 and it fell inside that window there.
    s = train(TrainConfig(variant=VARIANT, data=str(data), weights="none", epochs=18, batch_size=16,
                          out=str(tmp_path / "run")), quiet=True).summary
    flip = s["decisions"]["augment"]["flip"]
    assert flip["on"] is False and "changes the class" in flip["why"], flip
    assert s["augment"]["flip"] is False


def test_gradient_scale_must_stay_out_of_line_to_be_reported():
    """A fresh classifier's ratio is high for an epoch (tiny initial weights): reported only if it persists."""
    from edgefit.train.diagnostics import gradient_findings

    normal = {"stem": 0.02, "blocks.0": 0.01, "blocks.1": 0.015, "blocks.2": 0.012}
    once = [{"epoch": 1, "grad_weight_ratio": {**normal, "classifier": 5.0}},
            {"epoch": 2, "grad_weight_ratio": {**normal, "classifier": 0.05}},
            {"epoch": 3, "grad_weight_ratio": {}}]  # an epoch too short to sample
    assert gradient_findings(once) == []
    stays = once[:1] + [{"epoch": 2, "grad_weight_ratio": {**normal, "classifier": 4.0}}]
    found = gradient_findings(stays)
    assert [(d.code, d.epoch, d.evidence["group"]) for d in found] == [("exploding_gradients", 2, "classifier")]
    nan = [{"epoch": 1, "grad_weight_ratio": {**normal, "blocks.1": float("nan")}}]
    assert [d.code for d in gradient_findings(nan)] == ["exploding_gradients"]


def test_the_crop_is_decided_from_evidence_like_flips_and_narrowed_where_it_cuts_the_class_away():
    """augment_check.decide on measured top-1s: the wide crop trains until the evidence is in (flips and jitter
    wait off), stays where the model does as well on crops as on the whole image, and is narrowed where it does
    much worse; --crop on/off fix it, and the training loader uses the scale decided."""
    from edgefit.data.pipeline import MILD_CROP, WIDE_CROP
    from edgefit.train.augment_check import decide, in_force, word
    from edgefit.train.config import TrainConfig

    kept = decide({"none": 0.90, "crop": 0.88, "flip": 0.89, "jitter": 0.87}, num_classes=3)
    assert kept["crop"] == (True, "validation top-1 0.900 as fed, 0.880 cropped: the classes survive it")
    cut = decide({"none": 0.90, "crop": 0.60, "flip": 0.89, "jitter": 0.87}, num_classes=3)
    assert cut["crop"][0] is False and "0.600 cropped: it changes the class (drop > 0.14)" in cut["crop"][1]
    assert decide({"none": 0.40, "crop": 0.1, "flip": 0.1, "jitter": 0.1}, num_classes=3) is None  # too weak
    # 2 of 24 images: within the noise of 24 images for the crop (kept wide), beyond the 0.05 flips need to go on
    small = decide({"none": 0.500, "crop": 0.417, "flip": 0.417, "jitter": 0.5}, num_classes=3, images=24)
    assert small["crop"][0] is True and small["flip"][0] is False
    assert small["crop"][1].endswith("0.417 cropped: a drop within the noise of 24 images (< 0.29): kept")
    big = decide({"none": 0.500, "crop": 0.417, "flip": 0.417, "jitter": 0.5}, num_classes=3, images=3000)
    assert big["crop"] == (False, "validation top-1 0.500 as fed, 0.417 cropped: it changes the class (drop > 0.05)")
    assert in_force("crop", None) and not in_force("flip", None) and not in_force("jitter", None)
    assert not in_force("crop", [False, "x"]) and in_force("flip", [True, "x"])
    assert word("crop", True) == f"wide (scale {WIDE_CROP[0]:g}-1)" and word("crop", False) == "narrowed (scale 0.85-1)"
    assert MILD_CROP[0] > WIDE_CROP[0] and MILD_CROP[1] == WIDE_CROP[1] == 1.0
    cfg = TrainConfig(variant=VARIANT, data="d")
    assert cfg.augment_decisions("full")["crop"] is None
    assert TrainConfig(variant=VARIANT, data="d", crop="off").augment_decisions("full")["crop"] == [False, "--crop off"]
    assert cfg.augment_decisions("head")["crop"][0] is False
    r = run_cli("train", "--variant", VARIANT, "--data", "d", "--crop", "wide")
    assert r.returncode == 2 and "--crop" in r.stderr and "Traceback" not in r.stderr
