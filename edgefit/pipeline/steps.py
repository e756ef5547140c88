"""The stages of `edgefit build`, one function each: inputs in, a JSON-able record out (what
`Stages.run` stores and a rerun reads back instead of redoing the work)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from ..errors import BadInput, NothingFits
from .records import (
    Benched,
    Compressed,
    Deployed,
    Errors,
    Evaluated,
    Exported,
    Parity,
    PrecisionChoice,
    QatTrained,
    Searched,
    Selected,
    Trained,
)
from .runs import fresh, train_config
from .stages import file_digest

QAT_EPOCHS = 3


def int8_lost(exported: Exported, evaluated: Evaluated, budget) -> str | None:
    """Why post-training int8 is not good enough (None: it is): parity failed, the float model meets min_accuracy
    on the test split and the final artifact does not, or parity held only with layers kept float."""
    from ..verdict import meets

    final_top1 = evaluated.artifact_top1[exported.final]
    if not exported.parity.passed or (not meets("min_accuracy", final_top1, budget.min_accuracy)
                                      and meets("min_accuracy", evaluated.float_top1, budget.min_accuracy)):
        return "post-training int8 lost parity or accuracy"
    if exported.float_layers:
        return (f"post-training int8 held parity only with {max(exported.float_layers.values())} layer(s) kept "
                "float")
    return None


def score(exported: Exported, evaluated: Evaluated) -> tuple:
    """The better int8 result is the larger: parity, then test top-1 of the final artifact, then fewer float
    layers (each costs size and speed)."""
    return (exported.parity.passed, evaluated.artifact_top1[exported.final],
            -sum(exported.float_layers.values()))


def stage_qat(run_dir: Path, out: Path, opts, quiet: bool) -> QatTrained:
    from ..compress import CompressOptions, compress

    s = compress(run_dir, out, CompressOptions(qat=True, qat_epochs=QAT_EPOCHS, batch_size=opts.batch_size,
                                               seed=opts.seed), quiet=quiet)
    return QatTrained(run_dir=str(out), val_top1=s["val_top1"], qat=s["compress"]["qat"],
                      best_sha256=file_digest(out / "best.pt"))


UNPRUNABLE = ("max_resolution", "weights")  # rejections that pruning cannot fix


def pruned_places(search: int, search_pruned: int | None, fitting: int) -> int:
    """How many of a search's `search` places pruned candidates may take: `--search-pruned` (default half),
    and every place the variants that fit as they are cannot fill."""
    if search < 2:
        return 0
    return min(search, max(search // 2 if search_pruned is None else search_pruned, search - fitting))


def stage_select(budget, objective: str, max_resolution: int | None, weights: str | None, search: int = 0,
                 search_pruned: int | None = None, say=None) -> Selected:
    """Rank the zoo on the cost lines only (the accuracy line is left out of the verdict): in a build, min_accuracy is
    the task's accuracy, measured later on the user's images; the ImageNet prior only orders the candidates.
    `--max-resolution` and `--weights imagenet` (only variants with pretrained weights) narrow the zoo first.
    For a search, larger variants pruned to fit are offered too (joint.py)."""
    from ..select import nearest_miss, select
    from .joint import pruned_candidates

    sel = select(budget, objective, with_accuracy=False)
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
    miss = None
    if feasible:
        chosen = feasible[0]["name"]
    else:  # no width x resolution meets the cost lines: prune the variant that misses them least
        prunable = [c for c in sel.rejected if all(r["constraint"] not in UNPRUNABLE for r in c.reasons)]
        miss = nearest_miss(prunable, objective)
        chosen = miss["name"]
    places = pruned_places(search, search_pruned, len(feasible))
    if places and say:
        say(f"[select] looking for up to {places} larger variant(s) that fit when pruned")
    pruned = pruned_candidates(sel.candidates, budget, places)
    return Selected(feasible=feasible, rejected=[{"name": c.variant.name, "reasons": c.reasons} for c in sel.rejected],
                    needs_compress=not feasible, chosen=chosen, nearest_miss=miss,
                    predicted={c.variant.name: c.to_dict() for c in sel.candidates}[chosen], pruned=pruned)


def stage_train(variant: str, split, opts, run_dir: Path, resume: bool, quiet: bool, epochs: int,
                interrupt_after: int | None = None, prune: float = 0.0) -> Trained:
    from ..train import train

    resume = resume and (run_dir / "last.pt").is_file()
    if not resume:
        fresh(run_dir)
    cfg = train_config(variant, split, opts, run_dir, epochs, prune)
    if opts.nproc > 1:  # data parallel: the same `edgefit train` under torchrun
        from ..train.launch import train_with_torchrun

        r = train_with_torchrun(cfg, opts.nproc, resume, quiet, split_digest=split.digest())
    else:
        r = train(cfg, resume=resume, quiet=quiet, split=copy.deepcopy(split), interrupt_after=interrupt_after)
    return _trained(run_dir, variant, r.summary, prune)


def _trained(run_dir: Path, variant: str, s: dict, prune: float) -> Trained:
    return Trained(run_dir=str(run_dir), variant=variant, val_top1=s["val_top1"], epochs_run=s["epochs_run"],
                   weights=s.get("weights"), best_sha256=file_digest(run_dir / "best.pt"),
                   diagnostics=s.get("diagnostics", []), data_checks=s.get("data_checks", []),
                   decisions=s.get("decisions", {}), prune_ratio=prune)


def stage_keep_search_run(search_run: Path, run_dir: Path, variant: str, prune: float) -> Trained:
    """The search's last candidate standing ran the final training's epochs on its schedule (search.py): that run,
    copied to the build's training folder, is the final training."""
    import shutil

    tmp = run_dir.with_name(run_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(search_run, tmp)
    shutil.rmtree(run_dir, ignore_errors=True)
    tmp.rename(run_dir)
    return _trained(run_dir, variant, json.loads((run_dir / "summary.json").read_text()), prune)


def stage_search(pool: list[dict], split, opts, precision: str, root: Path, quiet: bool, say) -> Searched:
    """Fine-tune the candidates (select's dicts: variants that fit, and larger ones pruned to fit) on the
    user's data (search.py: in turn, or as Ray Tune trials under ASHA); rank by best validation top-1, then by
    predicted latency on the target."""
    from . import search

    so = opts.search_options
    if so.executor == "ray":
        trials = search.run_ray(pool, split, opts, so, precision, root, say)
    else:
        trials = search.run_local(pool, split, opts, precision, root, quiet, say)
    by_name = {c["name"]: c for c in pool}
    tried = [{**t, "latency_ms": by_name[t["name"]]["latency_ms"], "fps": by_name[t["name"]]["fps"],
              "accuracy_prior": by_name[t["name"]]["accuracy_prior"]} for t in trials]
    ranked = sorted(tried, key=lambda t: (-round(t["val_top1"], 4), t["latency_ms"]))
    for i, t in enumerate(ranked):
        t["rank"] = i + 1
    return Searched(tried=ranked, winner=ranked[0]["name"], executor=so.executor)


def stage_compress(run_dir: Path, out: Path, budget, opts, quiet: bool) -> Compressed:
    from ..compress import CompressOptions, compress

    s = compress(run_dir, out, CompressOptions(budget=budget, finetune_epochs=max(2, opts.epochs // 4),
                                               batch_size=opts.batch_size, seed=opts.seed), quiet=quiet)
    c = s["compress"]
    return Compressed(run_dir=str(out), val_top1=s["val_top1"], channel_ratio=c["channel_ratio"],
                      macs_removed=c["macs_removed"], host_speedup=c["host_speedup"], verdict=c["verdict"],
                      best_sha256=file_digest(out / "best.pt"))


def stage_export(run_dir: Path, art_dir: Path, formats: str, precision: str, io: str = "float") -> Exported:
    """Export and verify; for a microcontroller (io int8) the final TFLite must also run in TFLite Micro."""
    from ..export import export

    m = export(run_dir, art_dir, formats=formats, precisions=precision, io=io, verify=True,
               int8_for="tflite-micro" if io == "int8" else "litert")
    files = [a["file"] for a in m["artifacts"]]
    final = next((f for f in files if f.endswith(".tflite")), files[0])
    tflm = None
    if io == "int8":
        from ..tflm import measure_arena

        arena = measure_arena(art_dir / final)
        if not arena.ok:
            raise NothingFits(f"{m['variant']}: {final} does not run on TensorFlow Lite Micro ({arena.error}); "
                              "choose another variant (edgefit build --search 3 tries the next ones)")
        tflm = arena.to_dict()
    v = m["verify"]
    parity = Parity(passed=v["passed"], samples=v["samples"], images=v["images"],
                    artifacts=[{k: a[k] for k in ("file", "max_rel_error", "top1_agreement", "tolerance", "passed",
                                                  "reasons")} for a in v["artifacts"]])
    return Exported(files=files, final=final, io=io, tflm=tflm, sha256={f: file_digest(art_dir / f) for f in files},
                    macs=m["macs"], params=m["params"], parity=parity,
                    outside_fast_path={a["file"]: a.get("undelegated_ops", a.get("float_islands"))
                                       for a in m["artifacts"] if a["precision"] == "int8"},
                    float_layers={a["file"]: len(a["float_fallback"]["float_tensors"]) for a in m["artifacts"]
                                  if (a.get("float_fallback") or {}).get("passed")})


# the lines a precision could change on this host; min_accuracy is judged from the test split, parity from export
COST_LINES = ("storage_kb", "ram_kb", "target_fps", "host_fps")


def stage_precision(int8_dir: Path, int8: Exported, int8_eval: Evaluated, fp32_dir: Path, fp32: Exported,
                    fp32_eval: Evaluated, budget) -> PrecisionChoice:
    """--host-is-target with an int8 budget: time the final int8 file against its fp32 sibling on this host, the
    target, and keep fp32 where int8 is slower by more than the timing can tell apart and fp32 misses no line
    that int8 meets (the budget's lines from bench, the accuracy on the test split, parity)."""
    from ..benchmark.api import bench
    from ..benchmark.units import BenchOptions
    from ..deploy.bundle import read_manifest
    from ..export.speed import between
    from ..verdict import meets

    def entry(d: Path, f: str) -> dict:
        return next(a for a in read_manifest(d)["artifacts"] if a["file"] == f)

    def misses(row: dict) -> set[str]:
        """The cost lines bench failed for one file; every one where it could not judge the file (it did not run)."""
        if "budget_lines" not in row:
            return set(COST_LINES)
        return {ln["constraint"] for ln in row["budget_lines"]
                if ln["constraint"] in COST_LINES and ln["gating"] and ln["passed"] is not True}

    speed = between(fp32_dir, entry(fp32_dir, fp32.final), int8_dir, entry(int8_dir, int8.final))
    files = [int8_dir / int8.final, fp32_dir / fp32.final]
    rows = {Path(row["path"]).resolve(): row for row in bench(
        [str(f) for f in files], BenchOptions(host_is_target=True, min_runs=5, min_seconds=0.2), budget)["results"]}
    failing = [misses(rows[f.resolve()]) for f in files]
    for i, (ex, ev) in enumerate([(int8, int8_eval), (fp32, fp32_eval)]):
        if not meets("min_accuracy", ev.artifact_top1[ex.final], budget.min_accuracy):
            failing[i].add("min_accuracy")
        if not ex.parity.passed:
            failing[i].add("parity")
    return choose_precision(speed, *failing)


def choose_precision(speed, int8_failing: set[str], fp32_failing: set[str]) -> PrecisionChoice:
    """fp32 where int8 (`speed`: export.speed.PrecisionSpeed) is slower by more than the timing tells apart and
    fp32 misses no line that int8 meets; otherwise the budget's int8."""
    from ..export.speed import NOTE_ABOVE

    worse = sorted(fp32_failing - int8_failing)
    how = (f"{speed.int8_file} p50 {speed.int8_p50_ms:.3g} ms vs {speed.fp32_file} {speed.fp32_p50_ms:.3g} ms on "
           f"this host ({speed.cpu}, {speed.runtime}, timed together): int8 / fp32 {speed.ratio:.2f}")
    if speed.ratio <= NOTE_ABOVE:
        chosen, why = "int8", f"{how}; int8 is not slower by more than {NOTE_ABOVE:g}x, so the budget's int8 stays"
    elif worse:
        chosen, why = "int8", f"{how}; fp32 would be faster here but misses {', '.join(worse)}, so int8 stays"
    else:
        chosen, why = "fp32", (f"{how}; this host is the target and fp32 meets every line int8 meets, so the build "
                               "keeps the faster fp32 artifact")
    return PrecisionChoice(chosen=chosen, why=why, speed=speed.to_dict(), fp32_failing=worse)


def stage_evaluate(art_dir: Path, run_dir: Path) -> Evaluated:
    """Top-1 of every artifact (and the float model) on the held-out test split no training saw."""
    import numpy as np

    from .. import checkpoint
    from ..data.images import split_images
    from ..runtimes import top1, torch_logits
    from ..trace import measure

    ck = checkpoint.load(run_dir / "best.pt")
    test = split_images(checkpoint.Source(run_dir / "best.pt", ck, run_dir), "test", None)
    x, y = test.x, test.labels
    model = checkpoint.build_model(ck)
    ref = torch_logits(model, x).argmax(1)
    manifest = json.loads((art_dir / "edgefit.json").read_text())
    artifact_top1 = {a["file"]: top1(art_dir / a["file"], test, a) for a in manifest["artifacts"]}
    return Evaluated(test_images=int(len(y)), float_top1=float((ref == y).mean()), artifact_top1=artifact_top1,
                     chance=1 / len(ck["classes"]), per_class_images=np.bincount(y).tolist(),
                     stats=measure(model, ck["preprocess"]["resolution"]).to_dict())


def stage_bench(art_dir: Path, final: str, budget, host_is_target: bool) -> Benched:
    from ..benchmark.api import BenchOptions, bench

    r = bench([str(art_dir / final)], BenchOptions(host_is_target=host_is_target), budget)
    row = r["results"][0]
    keep = ("runtime", "device", "threads", "p50_ms", "p90_ms", "fps", "model_rss_mb", "peak_rss_mb", "size_bytes")
    return Benched(final=final, row={k: row.get(k) for k in keep}, machine=r["machine"],
                   lines=row.get("budget_lines", []))


def stage_errors(art_dir: Path, final: str, out: Path) -> Errors:
    """`edgefit errors` on the final artifact (its own runtime) over the held-out test split."""
    from ..error_analysis import analyse

    r = analyse(art_dir / final, split="test", out=out)
    return Errors(dir=str(out), model=final, n=r.n, top1=r.top1, errors=len(r.errors), pairs=r.pairs[:5],
                  worst_classes=sorted(r.per_class, key=lambda c: c["f1"])[:3])


def stage_deploy(art_dir: Path, targets: str) -> Deployed:
    """The deploy bundles of `--target`, each from the final verified artifacts (deploy/)."""
    from ..deploy.write import write_bundles

    return Deployed(bundles=write_bundles(art_dir, targets))
