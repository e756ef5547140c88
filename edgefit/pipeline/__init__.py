"""`edgefit build`: a budget and a folder of images in, a verified deployable model and a verdict out.

    select -> [search: short fine-tunes of the K best candidates, ranked by measured accuracy]
    -> train the winner -> compress if no variant meets the cost lines -> export -> verify parity
    -> evaluate the final artifact on held-out test images -> bench on this host -> report

Every stage records its outputs with a hash of its inputs under BUILD_DIR/stages, so a rerun skips
finished stages and an interrupted build continues where it stopped.

    from edgefit.pipeline import build
    result = build("budgets/pi-zero-2w.yaml", "runs/demo-data", out="runs/demo-build")
    print(result.passed, result.report_dir)
"""
from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import BadInput
from ..precision import Precision
from .stages import Stages, file_digest

VAL_FRACTION = TEST_FRACTION = 0.15


@dataclass
class BuildOptions:
    data: str
    out: str = "runs/build"
    search: int = 0  # candidates to try on the user's data (0: the best-ranked is trained directly)
    epochs: int = 20
    search_epochs: int | None = None  # default: a quarter of --epochs, at least 2
    weights: str | None = None  # imagenet | none | PATH; default: the variant's pretrained weights
    formats: str = "onnx,tflite"
    batch_size: int = 32
    seed: int = 0
    objective: str = "accuracy"
    max_resolution: int | None = None  # e.g. the images' own size: upsampling adds cost, not detail
    host_is_target: bool = False
    qat: str = "auto"  # auto: when post-training int8 loses parity or accuracy | always | never
    jitter: float = 0.0
    interrupt_after: int | None = None  # testing hook: stop the final training as if killed

    def validate(self) -> None:
        if self.search < 0 or self.epochs < 1 or (self.search_epochs is not None and self.search_epochs < 1):
            raise BadInput("--search must be 0 or more and --epochs/--search-epochs 1 or more")
        if self.max_resolution is not None and self.max_resolution < 32:
            raise BadInput(f"--max-resolution must be 32 or more, got {self.max_resolution}")
        if self.batch_size < 1:
            raise BadInput(f"--batch-size must be 1 or more, got {self.batch_size}")
        if self.qat not in ("auto", "always", "never"):
            raise BadInput(f"--qat must be auto, always or never, got {self.qat!r}")
        from ..export.formats import plan

        plan(self.formats, "int8")

    @property
    def short_epochs(self) -> int:
        return self.search_epochs or max(2, self.epochs // 4)


@dataclass
class BuildResult:
    report: dict
    out: Path

    @property
    def passed(self) -> bool:
        return self.report["passed"]


def build(budget_path: str | Path, opts: BuildOptions, say: Callable[[str], None] | None = None,
          quiet: bool = True) -> BuildResult:
    """Run (or continue) the build of `budget_path` on `opts.data` into `opts.out`; writes the report."""
    from ..budget import load_budget
    from ..costs import cache_key
    from ..data.folder import scan
    from ..fsutil import atomic_write_json
    from . import report as report_mod

    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    opts.validate()
    budget_path = Path(budget_path)
    budget = load_budget(budget_path)
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file; give a directory for the build")
    if out.is_dir() and any(out.iterdir()) and not (out / "stages").is_dir():
        raise BadInput(f"--out {out} holds files that are not an edgefit build; choose a new directory")
    split = scan(opts.data, seed=opts.seed, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)
    n = len(split.classes)
    if "num_classes" in budget.model_fields_set and budget.num_classes != n:
        raise BadInput(f"{budget_path} states num_classes: {budget.num_classes} but {opts.data} has {n} classes "
                       f"({', '.join(split.classes[:4])}{', ...' if n > 4 else ''}); remove num_classes from the "
                       "budget (a build takes it from the data) or fix the folder")
    if not split.files["test"] or not split.files["val"]:
        raise BadInput(f"{opts.data} leaves no held-out images for validation and test; a build needs at least "
                       "7 images per class (or train/, val/ and test/ folders)")
    budget = budget.with_num_classes(n)
    cost_budget = budget.model_copy(update={"min_accuracy": 0.0})  # select and prune on the cost lines only
    (out / "stages").mkdir(parents=True, exist_ok=True)  # marks the folder as a build from here on
    atomic_write_json(out / "split.json", split.to_dict())
    stages = Stages(out, say)
    base = {"split": split.digest(), "seed": opts.seed, "edgefit": __version__}

    sel = stages.run("select", {"budget": budget.model_dump(), "objective": opts.objective, **base,
                                "max_resolution": opts.max_resolution, "weights": opts.weights, "zoo": cache_key(n)},
                     lambda resume: _select(cost_budget, opts.objective, opts.max_resolution, opts.weights))
    winner = sel["chosen"]
    if opts.search and len(sel["feasible"]) > 1:
        names = [c["name"] for c in sel["feasible"][:opts.search]]
        searched = stages.run("search", {"candidates": names, "epochs": opts.short_epochs, "weights": opts.weights,
                                         "batch_size": opts.batch_size, **base},
                              lambda resume: _search(names, sel, split, opts, out / "search", quiet, say),
                              workdir=out / "search", resumable=True)
        winner = searched["winner"]
    else:
        searched = None
    train_out = stages.run("train", {"variant": winner, "epochs": opts.epochs, "weights": opts.weights,
                                     "batch_size": opts.batch_size, "jitter": opts.jitter, **base},
                           lambda resume: _train(winner, split, opts, out / "train", resume, quiet, opts.epochs,
                                                 opts.interrupt_after),
                           workdir=out / "train", resumable=True)
    final_run = Path(train_out["run_dir"])
    compressed = None
    if sel["needs_compress"]:
        compressed = stages.run("compress", {"from": train_out["best_sha256"], "budget": budget.model_dump()},
                                lambda resume: _compress(final_run, out / "compress", cost_budget, opts, quiet),
                                workdir=out / "compress")
        final_run = Path(compressed["run_dir"])
        source_sha = compressed["best_sha256"]
    else:
        source_sha = train_out["best_sha256"]
    precision = Precision.parse(budget.precision).value
    art_dir = out / "artifacts"
    exported = stages.run("export", {"from": source_sha, "formats": opts.formats, "precision": precision},
                          lambda resume: _export(final_run, art_dir, opts.formats, precision), workdir=art_dir)
    evaluated = stages.run("evaluate", {"artifacts": exported["sha256"]},
                           lambda resume: _evaluate(art_dir, final_run))
    qat = None
    if precision == "int8" and (opts.qat == "always" or (opts.qat == "auto" and _int8_lost(exported, evaluated,
                                                                                          budget))):
        qat_run, qat_art = out / "qat", out / "artifacts-qat"
        trained = stages.run("qat", {"from": source_sha, "epochs": QAT_EPOCHS, "batch_size": opts.batch_size},
                             lambda resume: _qat(final_run, qat_run, opts, quiet), workdir=qat_run)
        ex_q = stages.run("export_qat", {"from": trained["best_sha256"], "formats": opts.formats,
                                         "precision": precision},
                          lambda resume: _export(qat_run, qat_art, opts.formats, precision), workdir=qat_art)
        ev_q = stages.run("evaluate_qat", {"artifacts": ex_q["sha256"]}, lambda resume: _evaluate(qat_art, qat_run))
        kept = _score(ex_q, ev_q) > _score(exported, evaluated)
        qat = {"why": "forced (--qat always)" if opts.qat == "always" else
               "post-training int8 lost parity or accuracy", "epochs": QAT_EPOCHS, "kept": kept,
               "before": _int8_summary(exported, evaluated), "after": _int8_summary(ex_q, ev_q)}
        if kept:
            final_run, art_dir, exported, evaluated = qat_run, qat_art, ex_q, ev_q
    benched = stages.run("bench", {"artifacts": exported["sha256"], "budget": budget.model_dump(),
                                   "host_is_target": opts.host_is_target},
                         lambda resume: _bench(art_dir, exported["final"], budget, opts.host_is_target))
    rep = report_mod.make(budget, budget_path, opts, sel, searched, train_out, compressed, exported, evaluated,
                          benched, stages.times, out, art_dir, qat)
    report_mod.write(rep, out)
    return BuildResult(rep, out)


QAT_EPOCHS = 3


def _int8_lost(exported: dict, evaluated: dict, budget) -> bool:
    """Post-training int8 is not good enough: parity failed, or the float model meets min_accuracy on the
    test split and the final artifact does not."""
    final_top1 = evaluated["artifact_top1"][exported["final"]]
    return not exported["parity"]["passed"] or final_top1 < budget.min_accuracy <= evaluated["float_top1"]


def _score(exported: dict, evaluated: dict) -> tuple:
    return exported["parity"]["passed"], evaluated["artifact_top1"][exported["final"]]


def _int8_summary(exported: dict, evaluated: dict) -> dict:
    return {"parity_passed": exported["parity"]["passed"],
            "agreement": {a["file"]: a["top1_agreement"] for a in exported["parity"]["artifacts"]},
            "test_top1": evaluated["artifact_top1"], "float_test_top1": evaluated["float_top1"]}


def _qat(run_dir: Path, out: Path, opts: BuildOptions, quiet: bool) -> dict:
    from ..compress import compress

    s = compress(run_dir, out, qat=True, qat_epochs=QAT_EPOCHS, batch_size=opts.batch_size, seed=opts.seed,
                 quiet=quiet)
    return {"run_dir": str(out), "val_top1": s["val_top1"], "qat": s["compress"]["qat"],
            "best_sha256": file_digest(out / "best.pt")}


UNPRUNABLE = ("max_resolution", "weights")  # rejections that pruning cannot fix


def _select(cost_budget, objective: str, max_resolution: int | None, weights: str | None) -> dict:
    """Rank the zoo on the cost lines only (`cost_budget` has min_accuracy 0): in a build, min_accuracy is
    the task's accuracy, measured later on the user's images; the ImageNet prior only orders the candidates. `--max-resolution` and
    `--weights imagenet` (only variants with pretrained weights) narrow the zoo first."""
    from ..select import nearest_miss, select

    sel = select(cost_budget, objective)
    for c in sel.candidates:
        if max_resolution is not None and c.variant.resolution > max_resolution:
            c.reasons.append({"constraint": "max_resolution", "value": c.variant.resolution, "limit": max_resolution})
        if weights == "imagenet" and not c.variant.weights:
            c.reasons.append({"constraint": "weights", "value": 0, "limit": 1})
    if all(any(r["constraint"] in UNPRUNABLE for r in c.reasons) for c in sel.candidates):
        raise BadInput("no zoo variant" + (f" takes inputs of {max_resolution} px or less" if max_resolution else "")
                       + (" has ImageNet weights" if weights == "imagenet" else "")
                       + "; raise --max-resolution or use --weights none")
    feasible = [c.to_dict() for c in sel.feasible]
    out = {"feasible": feasible, "rejected": [{"name": c.variant.name, "reasons": c.reasons} for c in sel.rejected],
           "needs_compress": not feasible, "nearest_miss": None}
    if feasible:
        out["chosen"] = feasible[0]["name"]
    else:  # no width x resolution meets the cost lines: prune the variant that misses them least
        prunable = [c for c in sel.rejected if all(r["constraint"] not in UNPRUNABLE for r in c.reasons)]
        miss = nearest_miss(prunable, objective)
        out["nearest_miss"] = miss
        out["chosen"] = miss["name"]
    out["predicted"] = {c.variant.name: c.to_dict() for c in sel.candidates}[out["chosen"]]
    return out


def _train(variant: str, split, opts: BuildOptions, run_dir: Path, resume: bool, quiet: bool, epochs: int,
           interrupt_after: int | None = None) -> dict:
    from ..train import TrainConfig, train

    resume = resume and (run_dir / "last.pt").is_file()
    if not resume:
        _fresh(run_dir)
    cfg = TrainConfig(variant=variant, data=split.root, weights=opts.weights, epochs=epochs,
                      batch_size=opts.batch_size, seed=opts.seed, jitter=opts.jitter, out=str(run_dir),
                      val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)
    r = train(cfg, resume=resume, quiet=quiet, split=copy.deepcopy(split), interrupt_after=interrupt_after)
    s = r.summary
    return {"run_dir": str(run_dir), "variant": variant, "val_top1": s["val_top1"], "epochs_run": s["epochs_run"],
            "weights": s.get("weights"), "best_sha256": file_digest(run_dir / "best.pt")}


def _search(names: list[str], sel: dict, split, opts: BuildOptions, root: Path, quiet: bool, say) -> dict:
    """Short fine-tunes of the candidates on the user's data; rank by validation top-1, then by
    predicted latency on the target. A candidate finished in an interrupted search is not redone."""
    by_name = {c["name"]: c for c in sel["feasible"]}
    tried = []
    for name in names:
        run_dir = root / name
        done = run_dir / "summary.json"
        if done.is_file():
            s = json.loads(done.read_text())
            r = {"val_top1": s["val_top1"]}
        else:
            say(f"[search] {name}: {opts.short_epochs} epochs")
            r = _train(name, split, opts, run_dir, True, quiet, opts.short_epochs)
        tried.append({"name": name, "val_top1": r["val_top1"], "latency_ms": by_name[name]["latency_ms"],
                      "fps": by_name[name]["fps"], "accuracy_prior": by_name[name]["accuracy_prior"],
                      "epochs": opts.short_epochs})
    ranked = sorted(tried, key=lambda t: (-round(t["val_top1"], 4), t["latency_ms"]))
    for i, t in enumerate(ranked):
        t["rank"] = i + 1
    return {"tried": ranked, "winner": ranked[0]["name"]}


def _fresh(folder: Path) -> Path:
    """Remove a training run that cannot be resumed (no last.pt yet): train refuses a folder with files."""
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    return folder


def _compress(run_dir: Path, out: Path, cost_budget, opts: BuildOptions, quiet: bool) -> dict:
    from ..compress import compress

    s = compress(run_dir, out, budget=cost_budget,
                 finetune_epochs=max(2, opts.epochs // 4), batch_size=opts.batch_size, seed=opts.seed, quiet=quiet)
    c = s["compress"]
    return {"run_dir": str(out), "val_top1": s["val_top1"], "channel_ratio": c["channel_ratio"],
            "macs_removed": c["macs_removed"], "host_speedup": c["host_speedup"], "verdict": c["verdict"],
            "best_sha256": file_digest(out / "best.pt")}


def _export(run_dir: Path, art_dir: Path, formats: str, precision: str) -> dict:
    from ..export import export

    m = export(run_dir, art_dir, formats=formats, precisions=precision, verify=True)
    files = [a["file"] for a in m["artifacts"]]
    final = next((f for f in files if f.endswith(".tflite")), files[0])
    v = m["verify"]
    return {"files": files, "final": final, "sha256": {f: file_digest(art_dir / f) for f in files},
            "macs": m["macs"], "params": m["params"],
            "parity": {"passed": v["passed"], "samples": v["samples"], "images": v["images"],
                       "artifacts": [{k: a[k] for k in ("file", "max_rel_error", "top1_agreement", "tolerance",
                                                        "passed", "reasons")} for a in v["artifacts"]]}}


def _evaluate(art_dir: Path, run_dir: Path) -> dict:
    """Top-1 of every artifact (and the float model) on the held-out test split no training saw."""
    import numpy as np

    from .. import checkpoint
    from ..export.source import Source, split_images
    from ..runtimes import runner, torch_logits
    from ..trace import measure

    ck = checkpoint.load(run_dir / "best.pt")
    x, labels = split_images(Source(run_dir / "best.pt", ck, run_dir), "test", None, 10 ** 9)
    y = labels.numpy()
    model = checkpoint.build_model(ck)
    ref = torch_logits(model, x).argmax(1)
    manifest = json.loads((art_dir / "edgefit.json").read_text())
    top1 = {a["file"]: float((runner(art_dir / a["file"])(x.numpy()).argmax(1) == y).mean())
            for a in manifest["artifacts"]}
    return {"test_images": int(len(y)), "float_top1": float((ref == y).mean()), "artifact_top1": top1,
            "chance": 1 / len(ck["classes"]), "per_class_images": np.bincount(y).tolist(),
            "stats": measure(model, ck["preprocess"]["resolution"]).to_dict()}


def _bench(art_dir: Path, final: str, budget, host_is_target: bool) -> dict:
    from ..benchmark.api import bench

    r = bench([str(art_dir / final)], budget=budget, host_is_target=host_is_target)
    row = r["results"][0]
    keep = ("runtime", "device", "threads", "p50_ms", "p90_ms", "fps", "peak_rss_mb", "size_bytes")
    return {"final": final, "row": {k: row.get(k) for k in keep}, "machine": r["machine"],
            "lines": row.get("budget_lines", [])}
