"""The build's verdict: every budget line with its limit, the value predicted at select time, the value
measured on the final artifact, pass/fail and margin; candidates, parity, artifacts, stage times.
Written as report.json (machine-readable: `passed`, `lines`), report.md and report.png."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text
from .records import (
    Benched,
    Compressed,
    Deployed,
    Errors,
    Evaluated,
    Exported,
    ParityTry,
    PrecisionChoice,
    QatOutcome,
    Searched,
    Selected,
    Trained,
    as_json,
)

NEXT_MOVES = {
    "storage_kb": "a smaller variant (`edgefit select BUDGET --objective size`) or pruning "
                  "(`edgefit compress RUN --budget BUDGET`)",
    "ram_kb": "a lower input resolution or a narrower variant (`edgefit select BUDGET --objective size`)",
    "target_fps": "a faster variant (`edgefit select BUDGET --objective latency`) or pruning "
                  "(`edgefit compress RUN --budget BUDGET`)",
    "host_fps": "a faster variant or pruning; this host is slower than the budget asks",
    "min_accuracy": "more labelled images, more epochs (--epochs), trying more candidates (--search K), "
                    "pretrained weights (--weights imagenet), or quantization-aware training "
                    "(`edgefit compress RUN --qat`) when int8 loses accuracy",
    "parity": "the export disagrees with the trained model: check the calibration images, or export fp32",
}


def next_moves(failing: list[str], float_top1: float | None, num_classes: int) -> dict[str, str]:
    """What to try for each failing line. A trained model below twice chance gives scores close to ties, so its
    exports' agreement with it is noise: parity then points at the accuracy, not at the calibration images."""
    moves = {c: NEXT_MOVES[c] for c in failing}
    chance = 1 / max(num_classes, 1)
    if "parity" in moves and float_top1 is not None and float_top1 < 2 * chance:
        moves["parity"] = (f"the trained model is near chance (test top-1 {float_top1:.3f} on {num_classes} classes, "
                           f"chance {chance:.3f}): its scores are near ties, so the exports' agreement with it is "
                           "noise; make it learn first (min_accuracy's moves), then export again")
    return moves


@dataclass(frozen=True)
class StageOutputs:
    """What the stages of one build handed on (each a record `Stages.run` stored)."""

    sel: Selected
    searched: Searched | None
    train: Trained
    compressed: Compressed | None
    exported: Exported
    evaluated: Evaluated
    benched: Benched
    qat: QatOutcome | None
    errors: Errors | None
    deployed: Deployed | None = None
    precision: PrecisionChoice | None = None  # --host-is-target: int8 or fp32, timed on this host
    parity_tries: list[ParityTry] = field(default_factory=list)  # candidates tried while int8 failed parity


def advice(o: StageOutputs, data_root: str) -> list[str]:
    """The practitioner's reading of the build: data problems, training symptoms, the commonest mistake."""
    out = [f"data: {f['message']} (`edgefit doctor {data_root}` lists the files)"
           for f in o.train.data_checks if f["severity"] == "error"]
    out += [f"training: {d['code']}: {d['message']}" for d in o.train.diagnostics
            if d["severity"] in ("warning", "error")]
    e = o.errors
    if e and e.errors:
        p = e.pairs[0]
        out.append(f"errors: {e.errors} of {e.n} test images are wrong; the most-confused pair is "
                   f"{p['true']} taken for {p['predicted']} ({p['count']} of the {e.errors}); tag the rows of "
                   f"{e.dir}/errors.csv and run `edgefit errors --tags {e.dir}/errors.csv` to see what "
                   "fixing each cause could gain")
    return out


def make(budget, budget_path: Path, opts, o: StageOutputs, times: dict, art_dir: Path) -> dict:
    from ..costs import cost
    from ..verdict import Figure, Figures, judge, parity_line, tally

    train_out, exported, evaluated, benched = o.train, o.exported, o.evaluated, o.benched
    pred = o.sel.candidate(train_out.name)  # a search may have trained another than select's first
    final = exported.final
    final_path = art_dir / final
    from ..benchmark.latency_profile import graph_for
    from ..vocabulary import RUNTIME_OF

    kept = o.precision.chosen if o.precision else None  # --host-is-target may keep fp32 (stage_precision)
    measured = cost(evaluated.stats, budget, kept, graph=graph_for(final_path, RUNTIME_OF[final_path.suffix],
                                                                  kept, budget))
    size_kb = final_path.stat().st_size / 1024
    acc = evaluated.artifact_top1[final]
    searched_top1 = o.searched.val_top1(train_out.name) if o.searched else None
    predicted = Figures(
        storage_kb=Figure(pred["size_kb"], "cost model at select time"),
        ram_kb=Figure(pred["peak_ram_kb"], "cost model at select time"),
        latency_ms=Figure(pred["latency_ms"], "cost model at select time"),
        accuracy=None if searched_top1 is None else Figure(searched_top1, "validation top-1 in the search"))
    host = benched.row.get("fps")
    figs = Figures(
        storage_kb=Figure(size_kb, f"{final} {size_kb:.1f} KB", measured=True),
        ram_kb=_ram(benched, measured.peak_ram_kb),
        latency_ms=Figure(measured.latency_ms, f"predicted on the target: {measured.latency_method} of the final "
                          "network (not measured there: `edgefit probe` times it on the device)"),
        accuracy=Figure(acc, f"top-1 of {final} on {evaluated.test_images} held-out test images no training saw"
                        + ("" if searched_top1 is not None else
                           f"; not predicted (the ImageNet prior {pred['accuracy_prior']:.3f} only ranks candidates)"),
                        measured=True),
        host_fps=None if not host else Figure(host, f"{final} measured on this host ({benched.row.get('runtime')}, "
                                                    "batch 1)", measured=True))
    verdict = judge(budget, figs, predicted, host_is_target=opts.host_is_target)
    parity = exported.parity
    par = parity_line(parity.lowest_agreement, parity.required_agreement, parity.passed,
                      f"lowest top-1 agreement of the exports with the trained model on {parity.samples} images")
    lines = [ln.to_dict() for ln in verdict.lines if ln.constraint != "host_fps"] + [par.to_dict()] + \
        [ln.to_dict() for ln in verdict.lines if ln.constraint == "host_fps"]
    passed, failing = tally(lines)
    return {
        "schema": "edgefit-build/1", "edgefit_version": __version__, "passed": passed, "lines": lines,
        "failing": failing, "next_moves": next_moves(failing, evaluated.float_top1, budget.num_classes),
        "budget": {"file": str(budget_path), **budget.model_dump()},
        "data": {"root": opts.data, "num_classes": budget.num_classes},
        "model": {"variant": train_out.variant, "prune_ratio": train_out.prune_ratio,
                  "val_top1_float": train_out.val_top1,
                  "test_top1_float": evaluated.float_top1, "epochs_run": train_out.epochs_run,
                  "macs": measured.macs, "params": measured.params, "compressed": as_json(o.compressed)},
        "candidates": _candidates(o.sel, o.searched, train_out.name, o.compressed is not None,
                                  {t.name for t in o.parity_tries if not t.passed}),
        "parity_tries": [t.to_dict() for t in o.parity_tries],
        "search": None if o.searched is None else {
            "executor": o.searched.executor,
            "trials": [{k: t.get(k) for k in ("name", "variant", "prune_ratio", "precision", "epochs", "val_top1",
                                              "stopped_because", "curve")} for t in o.searched.tried]},
        "parity": parity.to_dict(),
        "quantization_aware_training": as_json(o.qat),
        "precision_on_host": as_json(o.precision),
        "artifacts": {"dir": str(art_dir), "final": str(final_path),
                      "files": {f: (art_dir / f).stat().st_size for f in exported.files},
                      "test_top1": evaluated.artifact_top1, "run_dir": train_out.run_dir},
        "host": {**benched.row, "cpu": benched.machine.get("cpu")},
        "training": {"diagnostics": train_out.diagnostics, "decisions": train_out.decisions,
                     "data_checks": train_out.data_checks},
        "errors": as_json(o.errors),
        "bundles": [b.to_dict() for b in o.deployed.bundles] if o.deployed else [],
        "advice": advice(o, opts.data),
        "stages": times,
    }


def _ram(benched: Benched, estimate_kb: float):
    """The arena TFLite Micro allocated for the final artifact when bench measured one, else the estimate."""
    from ..verdict import Figure

    ram = benched.line("ram_kb")
    if ram and ram["measured"] and ram["value"] is not None:
        return Figure(ram["value"], ram["note"], measured=True)
    return Figure(estimate_kb, "estimate: peak activation memory of the final network (tensor liveness)")


def _candidates(sel: Selected, searched: Searched | None, winner: str, compressed: bool,
                failed_parity: set[str]) -> dict:
    reasons: dict[str, int] = {}
    for r in sel.rejected:
        for x in r["reasons"]:
            reasons[x["constraint"]] = reasons.get(x["constraint"], 0) + 1
    tried = []
    for t in searched.tried if searched else []:
        why = "chosen" if t["name"] == winner else "its int8 artifact failed parity" if t["name"] in failed_parity \
            else "lower validation top-1 on your data" if t["val_top1"] < searched.val_top1(winner) else \
            "as accurate but slower on the target"
        tried.append({**t, "outcome": why})
    return {"feasible": len(sel.feasible), "rejected": len(sel.rejected), "rejected_by": reasons,
            "ranked_by_prior": [{k: c[k] for k in ("name", "accuracy_prior", "fps", "size_kb", "peak_ram_kb")}
                                for c in sel.feasible[:5]],
            "pruned_offered": [{k: c[k] for k in ("name", "variant", "prune_ratio", "accuracy_prior", "fps", "size_kb",
                                                  "peak_ram_kb")} for c in sel.pruned],
            "tried": tried, "chosen": winner,
            "pruned_because": sel.nearest_miss if compressed else None}


def _fmt(v, constraint: str) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if constraint in ("min_accuracy", "parity") else f"{v:,.1f}"


def markdown(rep: dict) -> str:
    b = rep["budget"]
    verdict = "PASS: every budget line is met" if rep["passed"] else f"FAIL: {', '.join(rep['failing'])} not met"
    m = rep["model"]
    out = [f"# edgefit build: {b['name']} - {verdict}", "",
           f"Model: `{m['variant']}`"
           + (f" with {m['prune_ratio']:.0%} of its channels pruned before training" if m.get("prune_ratio") else "")
           + f" ({m['macs'] / 1e6:.1f} M MACs, {m['params'] / 1e6:.2f} M params), "
           f"{rep['data']['num_classes']} classes from `{rep['data']['root']}`; final artifact "
           f"`{rep['artifacts']['final']}`.", "",
           "| line | limit | predicted at select | final model | pass | margin | how it was obtained |",
           "|---|---:|---:|---:|:---:|---:|---|"]
    for ln in rep["lines"]:
        ok = "-" if ln["passed"] is None else ("yes" if ln["passed"] else "**NO**")
        if not ln["gating"] and ln["passed"] is not None:
            ok += " (info)"
        margin = "-" if ln["margin"] is None else f"{ln['margin']:+.0%}"
        out.append(f"| {ln['constraint']} | {_fmt(ln['limit'], ln['constraint'])} | "
                   f"{_fmt(ln['predicted'], ln['constraint'])} | {_fmt(ln['value'], ln['constraint'])}"
                   f"{'' if ln['measured'] or ln['value'] is None else ' (predicted)'} | {ok} | "
                   f"{margin} | {ln['note']} |")
    if rep["next_moves"] or rep.get("advice"):
        out += ["", "## Next moves"] + [f"- {c}: {t}" for c, t in rep["next_moves"].items()]
        out += [f"- {a}" for a in rep.get("advice", [])]
    c = rep["candidates"]
    out += ["", "## Candidates",
            f"{c['feasible']} zoo variants meet the cost lines, {c['rejected']} do not ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(c["rejected_by"].items())) + ")."]
    if c.get("pruned_offered"):
        out.append("Larger variants pruned to fit, offered to the search: "
                   + ", ".join(f"`{p['variant']}` minus {p['prune_ratio']:.0%} of its channels"
                               for p in c["pruned_offered"])
                   + " (their ImageNet prior is the unpruned variant's).")
    if c["pruned_because"]:
        out.append(f"None fits, so the nearest miss `{c['pruned_because']['name']}` was pruned "
                   f"({c['pruned_because']['relaxation']} would admit it unpruned).")
    if c["tried"]:
        out += ["", f"Search ({rep['search']['executor'] if rep.get('search') else 'local'}):", "",
                "| candidate | val top-1 (search) | epochs | stopped because | predicted FPS | ImageNet prior "
                "| outcome |",
                "|---|---:|---:|---|---:|---:|---|"]
        out += [f"| {t['name']} | {t['val_top1']:.3f} | {t.get('epochs', '-')} | {t.get('stopped_because', '-')} | "
                f"{t['fps']:.1f} | {t['accuracy_prior']:.3f} | {t['outcome']} |" for t in c["tried"]]
    elif rep.get("parity_tries"):
        out.append(f"Ranked first by prior: `{rep['parity_tries'][0]['name']}` (no --search); trained next: "
                   + ", ".join(f"`{t['name']}`" for t in rep["parity_tries"][1:]) + " (below).")
    else:
        out.append(f"Chosen by prior: `{c['chosen']}` (no --search).")
    p = rep["parity"]
    out += ["", f"## Parity ({p['samples']} images, {p['images']})"]
    out += [f"- `{a['file']}`: top-1 agreement {a['top1_agreement']:.3f}, max relative error "
            f"{a['max_rel_error']:.2e}: {'ok' if a['passed'] else 'FAIL ' + '; '.join(a['reasons'])}"
            for a in p["artifacts"]]
    if rep.get("parity_tries"):
        out += ["", "## Candidates tried for int8 parity",
                "The first candidate's int8 artifact failed parity, so the build trained the next one that fits "
                "and went on with the best (parity first, then test top-1).", "",
                "| candidate | QAT | lowest agreement | required | test top-1 (final artifact) | outcome |",
                "|---|:---:|---:|---:|---:|---|"]
        out += [f"| {t['name']} | {'yes' if t['qat'] else 'no'} | {t['lowest_agreement']:.3f} | "
                f"{t['required_agreement']:.3f} | {t['test_top1']:.3f} | "
                f"{'kept' if t['kept'] else 'not kept'}{'' if t['passed'] else ', failed parity'} |"
                for t in rep["parity_tries"]]
    q = rep["quantization_aware_training"]
    if q:
        b, a = q["before"], q["after"]
        out += ["", "## Quantization-aware training",
                f"{q['why']}: {q['epochs']} epochs of QAT; "
                + ", ".join(f"`{f}` agreement {b['agreement'][f]:.3f} -> {a['agreement'][f]:.3f}, test top-1 "
                            f"{b['test_top1'][f]:.3f} -> {a['test_top1'][f]:.3f}" for f in a["agreement"])
                + "".join(f"; float layers in `{f}`: {b.get('float_layers', {}).get(f, 0)} -> "
                          f"{a.get('float_layers', {}).get(f, 0)}" for f in {**b.get("float_layers", {}),
                                                                           **a.get("float_layers", {})})
                + f"; {'kept' if q['kept'] else 'not kept (no better than post-training quantization)'}."]
    pc = rep.get("precision_on_host")
    if pc:
        out += ["", f"## Precision on this host (the target): {pc['chosen']}", pc["why"] + "."]
    e = rep.get("errors")
    if e:
        out += ["", f"## Errors of `{e['model']}` on {e['n']} test images ({e['errors']} wrong, in `{e['dir']}`)"]
        out += [f"- {p['true']} taken for {p['predicted']}: {p['count']}" for p in e["pairs"]]
        out += [f"- weakest class `{c['class']}`: F1 {c['f1']:.3f} (precision {c['precision']:.3f}, recall "
                f"{c['recall']:.3f}, {c['support']} images)" for c in e["worst_classes"]]
    a = rep["artifacts"]
    out += ["", "## Artifacts", f"In `{a['dir']}` (with edgefit.json, labels.txt, reference.pt):"]
    out += [f"- `{f}`: {size / 1024:.1f} KB, test top-1 {a['test_top1'][f]:.3f}" for f, size in a["files"].items()]
    out += [f"- training run: `{a['run_dir']}`"]
    if rep.get("bundles"):
        out += ["", "## Deploy bundles"]
        out += [f"- {b['target']}: `{b['directory']}` ({', '.join(b['files'])}); from "
                f"{b['artifact'] or 'reference.pt'}, parity: {b['parity']}" for b in rep["bundles"]]
    out += ["", "## Stage times", "| stage | seconds | |", "|---|---:|---|"]
    out += [f"| {k} | {v['seconds']:.1f} | {'skipped (unchanged)' if v['skipped'] else ''} |"
            for k, v in rep["stages"].items()]
    h = rep["host"]
    out += ["", f"Host: {h.get('cpu') or 'unknown CPU'}; {h.get('runtime')} p50 {h.get('p50_ms') or 0:.2f} ms."]
    return "\n".join(out) + "\n"


def plot(rep: dict) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [ln for ln in rep["lines"] if ln["margin"] is not None]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(lines) + 1.2))
    names = [ln["constraint"] + ("" if ln["gating"] else " (info)") for ln in lines]
    margins = [max(-1.0, min(ln["margin"], 3.0)) * 100 for ln in lines]
    colours = ["#2a9d4b" if ln["passed"] else "#c0392b" for ln in lines]
    ax.barh(names, margins, color=colours)
    ax.axvline(0, color="black", linewidth=1)
    ax.invert_yaxis()
    ax.set_xlabel("margin to the limit, % (right of 0 passes; clipped to [-100, 300])")
    ax.set_title(f"edgefit build: {rep['budget']['name']} - {'PASS' if rep['passed'] else 'FAIL'}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write(rep: dict, out: Path) -> None:
    atomic_write_json(out / "report.json", rep)
    atomic_write_text(out / "report.md", markdown(rep))
    atomic_write_bytes(out / "report.png", plot(rep))
