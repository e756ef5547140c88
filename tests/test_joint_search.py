"""Joint candidates: a larger variant pruned before training (`edgefit train --prune`), offered by select when it
then fits the budget, and the `edgefit train` options torchrun is given."""
import json

import pytest
import torch

from edgefit import checkpoint, zoo
from edgefit.budget import budget_from_mapping
from edgefit.compress import pruned_copy, stats_of
from edgefit.costs import cost
from edgefit.pipeline.joint import PRUNE_MAX, pruned_candidates
from edgefit.select import select
from edgefit.train import TrainConfig
from edgefit.train.launch import NOT_OPTIONS, train_args
from edgefit.verdict import judge

from .conftest import make_colours, run_cli

TIGHT = dict(name="tight", flops_per_sec="150M", storage_kb=1024, ram_kb=2048, target_fps=10, min_accuracy=0.0,
             precision="int8", num_classes=3)  # at most 7.5 M MACs: no 96 px variant fits as it is


def test_pruning_removes_the_same_channels_whatever_the_weights():
    """Select checks a pruned candidate's cost on an untrained copy; it holds for any weights."""
    v = zoo.get_variant("mobilenet_v3_small_0.75_96")
    shapes = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = pruned_copy(zoo.build_model(v, 3), v.resolution, 0.3, 8)
        shapes.append({k: tuple(p.shape) for k, p in m.state_dict().items()})
    assert shapes[0] == shapes[1]
    assert shapes[0]["conv_head.weight"][0] < zoo.build_model(v, 3).state_dict()["conv_head.weight"].shape[0]


def test_select_offers_the_smallest_prune_that_fits_for_variants_better_than_those_that_fit():
    budget = budget_from_mapping(TIGHT)
    sel = select(budget, family="v3")
    sel.candidates = [c for c in sel.candidates if c.variant.resolution <= 96]
    offered = pruned_candidates(sel.candidates, budget, 2)
    assert len(offered) == 2 and len({(c["family"], c["width"]) for c in offered}) == 2
    for c in offered:
        v = zoo.get_variant(c["variant"])
        assert 0 < c["prune_ratio"] <= PRUNE_MAX and c["name"] == f"{v.name}.pruned{c['prune_ratio']:g}"
        model = zoo.build_model(v, 3)
        for ratio, fits in ((c["prune_ratio"], True), (round(c["prune_ratio"] - 0.05, 6), False)):
            s = stats_of(pruned_copy(model, v.resolution, ratio, 8), v.resolution)
            lines = judge(budget, cost(s, budget).figures(), with_accuracy=False, with_host=False)
            assert (not lines.reasons()) == fits, (c["name"], ratio)
        assert c["macs"] == stats_of(pruned_copy(model, v.resolution, c["prune_ratio"], 8), v.resolution)["macs"]
    # with a variant that fits, only variants with a better ImageNet prior are offered
    roomy = budget_from_mapping({**TIGHT, "flops_per_sec": "300M", "storage_kb": 1536})
    sel = select(roomy, family="v3")
    sel.candidates = [c for c in sel.candidates if c.variant.resolution <= 96]
    best = max(c.accuracy_prior for c in sel.candidates if c.feasible)
    offered = pruned_candidates(sel.candidates, roomy, 3)
    assert offered and all(c["accuracy_prior"] > best for c in offered)


def test_train_args_carry_every_option_of_the_config():
    """`build --nproc` passes the training settings to `edgefit train` under torchrun: none may be dropped."""
    from edgefit.cli.train_cmd import train_cmd

    cfg = TrainConfig(variant="mobilenet_v3_small_0.75_96", data="d", weights="none", strategy="full", epochs=3,
                      batch_size=6, lr=0.02, optimizer="sgd", patience=2, seed=4, val_fraction=0.3,
                      test_fraction=0.1, flip="off", jitter=0.2, device="cpu", data_cache="c", prune=0.25, out="o")
    params = train_cmd.make_context("train", train_args(cfg, resume=True)).params
    assert params["resume"] is True
    for name, value in cfg.to_dict().items():
        if name not in NOT_OPTIONS:
            assert str(params[name]) == str(value), name
    with pytest.raises(ValueError, match="label_smoothing"):
        train_args(TrainConfig(variant="v", data="d", label_smoothing=0.2), resume=False)


def test_train_prune_removes_channels_before_training_and_the_run_reloads(tmp_path):
    (tmp_path / "data").mkdir()
    data = make_colours(tmp_path / "data", per_class=8, noise=20, seed=2)
    out = tmp_path / "run"
    r = run_cli("train", "--variant", "mobilenet_v3_small_0.75_96", "--data", data, "--weights", "none", "--epochs",
                "1", "--batch-size", "8", "--prune", "0.3", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = checkpoint.load(out / "best.pt")
    assert ck["channel_ratio"] == 0.3 and "before training" in ck["pruned_from"]
    model = checkpoint.build_model(ck)
    full = zoo.build_model(zoo.get_variant("mobilenet_v3_small_0.75_96"), 3)
    assert sum(p.numel() for p in model.parameters()) < 0.75 * sum(p.numel() for p in full.parameters())
    assert json.loads((out / "config.json").read_text())["config"]["prune"] == 0.3
    assert model(torch.zeros(1, 3, 96, 96)).shape == (1, 3)
    r = run_cli("train", "--variant", "mobilenet_v3_small_0.75_96", "--data", data, "--strategy", "head",
                "--prune", "0.3", "--out", tmp_path / "head")
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("edgefit:")]
    assert r.returncode == 2 and len(err) == 1 and "--strategy full" in err[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "head").exists()
