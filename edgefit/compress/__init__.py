"""`edgefit compress`: structured channel pruning (torch-pruning, DepGraph) of a trained run.

Channels are really removed (depthwise groups, residual additions and squeeze-excite are coupled by
the dependency graph; the first convolution and the classifier are protected), rounded to multiples
of `round_to`, in K steps with short fine-tunes between, then a recovery fine-tune through the
training stage. The result is an ordinary run directory whose best.pt carries the architecture, so it
reloads without torch-pruning and flows into `edgefit export`, `verify` and `bench`.
"""
from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, NothingFits
from ..prune import MAX_CHANNEL_RATIO, ROUND_TO, _pruner, prune_in_place, pruned_copy

__all__ = ["MAX_CHANNEL_RATIO", "ROUND_TO", "CompressOptions", "compress", "prune_in_place", "pruned_copy",
           "ratio_for_budget", "ratio_for_macs", "stats_of"]


@dataclass(frozen=True)
class CompressOptions:
    """What `edgefit compress` does: exactly one of prune_ratio / target_macs / budget, or qat alone (or after)."""

    prune_ratio: float | None = None  # share of MACs to remove
    target_macs: float | None = None
    budget: object = None  # a Budget: prune only as much as its cost lines need
    steps: int = 3
    round_to: int = ROUND_TO
    finetune_epochs: int = 5
    step_epochs: int = 1
    batch_size: int = 64
    lr: float | None = None
    seed: int = 0
    qat: bool = False
    qat_epochs: int = 3
    qat_lr: float | None = None

    @property
    def prunes(self) -> bool:
        return any(x is not None for x in (self.prune_ratio, self.target_macs, self.budget))

    def validate(self) -> None:
        given = sum(x is not None for x in (self.prune_ratio, self.target_macs, self.budget))
        if given > 1 or (given == 0 and not self.qat):
            raise BadInput("give exactly one of --prune-ratio, --target-macs, --budget (or --qat alone)")
        if self.prune_ratio is not None and not 0 < self.prune_ratio < 1:
            raise BadInput(f"--prune-ratio is the share of MACs to remove, in (0, 1); got {self.prune_ratio}")
        if min(self.steps, self.round_to, self.finetune_epochs, self.qat_epochs) < 1:
            raise BadInput("--steps, --round-to, --finetune-epochs and --qat-epochs must be 1 or more")


@dataclass
class _Source:
    """The trained run being compressed, as _prune needs it."""

    model: object
    ck: dict
    run_dir: Path
    split: object
    resolution: int
    train_args: dict = field(default_factory=dict)  # TrainConfig fields shared by every fine-tune
    top1: float = 0.0


def stats_of(model, resolution: int) -> dict:
    from ..trace import measure

    return measure(model, resolution).to_dict()


def ratio_for_macs(model, resolution: int, target_macs: float, round_to: int) -> float:
    """The channel ratio whose pruned network has at most `target_macs` (bisection)."""
    lo, hi = 0.0, MAX_CHANNEL_RATIO
    if stats_of(pruned_copy(model, resolution, hi, round_to), resolution)["macs"] > target_macs:
        raise NothingFits(f"even pruning {hi:.0%} of the channels leaves more than {target_macs / 1e6:.1f} M MACs; "
                          "choose a smaller variant")
    for _ in range(12):
        mid = (lo + hi) / 2
        if stats_of(pruned_copy(model, resolution, mid, round_to), resolution)["macs"] <= target_macs:
            hi = mid
        else:
            lo = mid
    return hi


def ratio_for_budget(model, resolution: int, budget, round_to: int, grid: float = 0.05, start: float = 0.0,
                     most: float = MAX_CHANNEL_RATIO) -> tuple[float, list]:
    """The first channel ratio (in steps of `grid` from `start` up to `most`) whose predicted cost passes the
    budget's MAC/FPS, storage and RAM lines; accuracy is checked after the fine-tune, on real data."""
    from ..benchmark.latency_profile import model_graph
    from ..costs import cost
    from ..verdict import judge

    tried = []
    r = start
    while r <= most + 1e-9:
        m = pruned_copy(model, resolution, r, round_to)
        s = stats_of(m, resolution)
        c = cost(s, budget, graph=model_graph(m, resolution, budget))  # with its latency profile, as select does
        fails = [x["constraint"] for x in judge(budget, c.figures(), with_accuracy=False, with_host=False).reasons()]
        tried.append({"channel_ratio": round(r, 3), "macs": s["macs"], "params": s["params"], "fps": round(c.fps, 2),
                      "latency_ms": round(c.latency_ms, 3), "latency_method": c.latency_method,
                      "size_kb": round(c.size_kb, 1), "peak_ram_kb": round(c.peak_ram_kb, 1), "fails": fails})
        if not fails:
            return r, tried
        r = round(r + grid, 6)
    raise NothingFits(f"no pruning ratio up to {most:.0%} of channels meets {budget.name}'s "
                      f"{', '.join(tried[-1]['fails'])}; choose a smaller variant")


def host_latency_ms(model, resolution: int, threads: int = 2) -> float:
    """p50 onnxruntime latency on this host (fp32, batch 1) of the ONNX graph `edgefit export` writes."""
    import numpy as np

    from ..export.onnx_export import INPUT, to_onnx_bytes
    from ..runtimes import ort_session
    from ..timing import measure

    sess = ort_session(to_onnx_bytes(model, resolution, {}), threads)
    feed = {INPUT: np.random.default_rng(0).standard_normal((1, 3, resolution, resolution)).astype(np.float32)}
    return measure(lambda: sess.run(None, feed), min_runs=30, min_seconds=1.0)["p50_ms"]


def compress(run_dir: str | Path, out: str | Path, opts: CompressOptions, quiet: bool = False) -> dict:
    """Prune the run in `run_dir` and/or fine-tune it with fake quantization (`opts.qat`) into a new run
    directory `out`; returns its summary."""
    from .. import checkpoint
    from ..data.folder import Split
    from ..fsutil import atomic_write_json
    from ..train import TrainConfig, train

    opts.validate()
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "best.pt").is_file() or not (run_dir / "split.json").is_file():
        raise BadInput(f"{run_dir} is not an `edgefit train` run directory (best.pt and split.json expected)")
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"--out {out} already holds files; choose a new directory")
    if opts.qat:
        _require_torchao()
    t0 = time.perf_counter()
    ck = checkpoint.load(run_dir / "best.pt")
    model = checkpoint.build_model(ck)
    res = ck["preprocess"]["resolution"]
    split = Split.from_dict(json.loads((run_dir / "split.json").read_text()))
    source_cfg = json.loads((run_dir / "config.json").read_text())["config"]
    source_summary = json.loads((run_dir / "summary.json").read_text())
    crop, flip, jitter = _source_augment(source_cfg, source_summary)
    common = dict(variant=ck["variant"], data=split.root, weights=str(run_dir / "best.pt"), strategy="full",
                  batch_size=opts.batch_size, seed=opts.seed, crop=crop, flip=flip, jitter=jitter)
    meta = {"arch": ck["arch"]} if ck.get("arch") else {}  # a pruned source stays loadable after QAT
    summary, info = source_summary, {}  # info: the pruning fields, then "qat"
    with tempfile.TemporaryDirectory() as work:
        if opts.prunes:
            prune_out = Path(work) / "recovered" if opts.qat else out
            src = _Source(model, ck, run_dir, split, res, common, source_summary["val_top1"])
            pruned = _prune(src, prune_out, opts, quiet, work)
            model, meta, summary, info = pruned.model, pruned.meta, pruned.result.summary, pruned.info
        if opts.qat:
            from .qat import QatModel

            src_dir = Path(work) / "recovered" if opts.prunes else run_dir
            before = _int8_top1(model, src_dir)
            qmodel = QatModel(model, res)
            result = train(TrainConfig(**common, lr=opts.qat_lr or QAT_LR, epochs=opts.qat_epochs,
                                       patience=opts.qat_epochs, out=str(out)), quiet=quiet, model=qmodel,
                           split=copy.deepcopy(split), extra_meta={**meta, "qat": True})
            final = checkpoint.build_model(checkpoint.load(result.best_checkpoint))
            info["qat"] = {"scheme": "torchao PT2E QAT: int8 per-channel symmetric weights (batch-norm folded), "
                                     "8-bit per-tensor affine activations",
                           "epochs": opts.qat_epochs, "float_val_top1_before": summary["val_top1"],
                           "fake_quant_val_top1": result.summary["val_top1"],
                           "int8_onnx_val_top1_before": round(before, 4),
                           "int8_onnx_val_top1_after": round(_int8_top1(final, out), 4)}
            summary = result.summary
    summary = {**summary, "compress": {"source_run": str(run_dir.resolve()), **info,
                                       "seconds": round(time.perf_counter() - t0, 1)}}
    atomic_write_json(out / "summary.json", summary)
    return summary


QAT_LR = 1e-4  # AdamW; a tenth of the fine-tuning rate, the usual scale for QAT


def _source_augment(cfg: dict, summary: dict) -> tuple[str, str, float]:
    """(crop, flip, jitter): the augmentation the source run ended with (decided from evidence there), for its
    fine-tunes. Runs from before a decision existed had the wide crop, and flips as configured."""
    from ..train.config import JITTER

    aug = summary.get("augment")
    if aug is None:  # a run from before the evidence-based decisions
        return "on", ("on" if cfg.get("flip", True) not in (False, "off") else "off"), float(cfg.get("jitter") or 0.0)
    wide = aug.get("crop", True) or summary.get("strategy") == "head"  # head: no crop ran; the fine-tune's is wide
    return ("on" if wide else "off"), ("on" if aug["flip"] else "off"), \
        ((cfg.get("jitter") or JITTER) if aug["jitter"] else 0.0)


def _require_torchao() -> None:
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise BadInput("--qat needs torchao (PyTorch's quantization library), which is not installed; "
                       "reinstall edgefit (`make` installs it) or drop --qat") from None


def _int8_top1(model, run_dir: Path) -> float:
    from .. import checkpoint
    from ..checkpoint import Source
    from .qat import int8_onnx_top1

    return int8_onnx_top1(model, Source(run_dir / "best.pt", checkpoint.load(run_dir / "best.pt"), run_dir))


@dataclass(frozen=True)
class _Pruned:
    model: object  # the pruned, recovered network
    meta: dict  # its checkpoint metadata (the architecture that reloads it)
    result: object  # the recovery fine-tune's TrainResult
    info: dict  # the pruning fields of the summary


def _prune(src: _Source, out: Path, opts: CompressOptions, quiet: bool, work: str) -> _Pruned:
    """Prune stepwise with short fine-tunes, then the recovery fine-tune into `out`."""
    import torch

    from .. import arch as arch_mod
    from .. import checkpoint
    from ..costs import predicted_size_bytes
    from ..train import TrainConfig, train

    model, ck, run_dir, split, res, top1_before = src.model, src.ck, src.run_dir, src.split, src.resolution, src.top1
    budget, steps, round_to, finetune_epochs = opts.budget, opts.steps, opts.round_to, opts.finetune_epochs
    before = stats_of(model, res)
    search = None
    if budget is not None:
        ratio, search = ratio_for_budget(model, res, budget.with_num_classes(ck["num_classes"]), round_to)
    else:
        goal = opts.target_macs if opts.target_macs is not None else before["macs"] * (1 - opts.prune_ratio)
        if goal >= before["macs"]:
            raise BadInput(f"--target-macs {goal:.0f} is not below the model's {before['macs']} MACs")
        ratio = ratio_for_macs(model, res, goal, round_to)
    latency_before = host_latency_ms(model, res)
    common = {**src.train_args, "lr": opts.lr, "patience": max(2, finetune_epochs)}
    pruner = _pruner(model, res, ratio, steps, round_to) if ratio > 0 else None
    for k in range(steps if pruner else 0):
        pruner.step()
        if k < steps - 1:  # short fine-tunes between steps (in place); the last gets the recovery
            train(TrainConfig(**common, epochs=opts.step_epochs, out=str(Path(work) / f"step{k + 1}")),
                  quiet=quiet, model=model, split=copy.deepcopy(split),
                  extra_meta={"arch": arch_mod.describe(model)})
            model.cpu().to(memory_format=torch.contiguous_format)
    meta = {"arch": arch_mod.describe(model), "pruned_from": str((run_dir / "best.pt").resolve()),
            "channel_ratio": ratio}
    result = train(TrainConfig(**common, epochs=finetune_epochs, out=str(out)), quiet=quiet, model=model,
                   split=copy.deepcopy(split), extra_meta=meta)
    final = checkpoint.build_model(checkpoint.load(result.best_checkpoint))
    after = stats_of(final, res)
    latency_after = host_latency_ms(final, res)
    speedup = latency_before / latency_after
    removed = 1 - after["macs"] / before["macs"]

    def side(s, latency, top1):
        return {"macs": s["macs"], "params": s["params"],
                "predicted_int8_tflite_kb": round(predicted_size_bytes(s, "int8") / 1024, 1),
                "host_latency_ms_onnxruntime": round(latency, 3), "val_top1": top1}

    info = {"channel_ratio": round(ratio, 4), "steps": steps, "round_to": round_to, "budget_search": search,
            "before": side(before, latency_before, top1_before),
            "after": side(after, latency_after, result.summary["val_top1"]),
            "macs_removed": round(removed, 4), "host_speedup": round(speedup, 3), "faster": speedup > 1.05,
            "verdict": (f"{speedup:.2f}x faster on this host" if speedup > 1.05 else
                        f"NOT faster on this host ({speedup:.2f}x) despite {removed:.0%} fewer MACs")}
    return _Pruned(final, meta, result, info)
