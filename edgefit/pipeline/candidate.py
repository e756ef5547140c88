"""One candidate from training to verified artifacts, and the build's next try when its int8 artifact fails parity.

    train (or keep the search's run) -> compress when select found no variant that fits -> export + verify
    -> evaluate on the test split -> quantization-aware training when post-training int8 lost parity or accuracy

The build runs this for its first candidate. When the budget asks for int8 and the candidate's final int8 artifact
still fails parity after the layer fallback and QAT (when it ran: not with --qat never), the build runs it again
for the next candidate that fits (the search's next in rank, or select's next by prior), up to PARITY_TRIES
candidates in all, and goes on with the best (parity first, then test top-1: steps.score). A retried candidate's
stages are named `STAGE@CANDIDATE` and its folders are under `next/CANDIDATE/`, so an interrupted build continues
every try where it stopped.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import records as rec
from . import steps as st
from .stages import Stages, file_digest
from .steps import QAT_EPOCHS

PARITY_TRIES = 2  # candidates trained while int8 parity fails: each is a whole training


@dataclass(frozen=True)
class PathInputs:
    """What every candidate's path shares: the build's options, data, budget and export plan."""

    opts: Any  # BuildOptions (pipeline/__init__.py): epochs, weights, batch_size, nproc, qat, seed
    split: Any  # data.folder.Split
    base: dict  # the inputs every stage record carries (split digest, seed, version)
    budget: Any  # budget.Budget
    formats: str
    precision: str  # fp32 | fp16 | int8
    compress: bool  # select found no variant that meets the cost lines: prune the trained network
    quiet: bool
    say: Callable[[str], None]


@dataclass(frozen=True)
class CandidatePath:
    """The stage records of one candidate, from its training to its final verified artifacts."""

    train: rec.Trained
    compressed: rec.Compressed | None
    exported: rec.Exported
    evaluated: rec.Evaluated
    qat: rec.QatOutcome | None
    final_run: Path  # the run the final artifacts were exported from (training, compress or QAT)
    art_dir: Path
    source_sha: str  # digest of that run's best.pt

    @property
    def name(self) -> str:
        return self.train.name

    def parity_try(self, kept: bool) -> rec.ParityTry:
        p, ev = self.exported.parity, self.evaluated
        return rec.ParityTry(name=self.name, variant=self.train.variant, prune_ratio=self.train.prune_ratio,
                             passed=p.passed, lowest_agreement=p.lowest_agreement,
                             required_agreement=p.required_agreement,
                             test_top1=ev.artifact_top1[self.exported.final], float_test_top1=ev.float_top1,
                             qat=self.qat is not None, run_dir=str(self.final_run),
                             art_dir=str(self.art_dir), kept=kept)


def run_candidate(stages: Stages, inp: PathInputs, variant: str, prune: float, root: Path, suffix: str = "",
                  kept_run: Path | None = None, interrupt_after: int | None = None) -> CandidatePath:
    """Train `variant` (pruned by `prune`), or keep the search's finished run of it, and carry it to verified
    artifacts in `root`. Stage names end with `suffix` ('' for the build's first candidate)."""
    opts, budget = inp.opts, inp.budget

    def name(stage: str) -> str:
        return stage + suffix

    train_inputs = {"variant": variant, "epochs": opts.epochs, "weights": opts.weights,
                    "batch_size": opts.batch_size, **inp.base, **({"nproc": opts.nproc} if opts.nproc > 1 else {}),
                    **({"prune": prune} if prune else {})}
    if kept_run is not None:
        train_out = stages.run(name("train"), {**train_inputs, "search_run": file_digest(kept_run / "best.pt")},
                               lambda resume: st.stage_keep_search_run(kept_run, root / "train", variant, prune),
                               rec.Trained, workdir=root / "train")
    else:
        train_out = stages.run(name("train"), train_inputs,
                               lambda resume: st.stage_train(variant, inp.split, opts, root / "train", resume,
                                                             inp.quiet, opts.epochs, interrupt_after, prune),
                               rec.Trained, workdir=root / "train", resumable=True)
    final_run = Path(train_out.run_dir)
    compressed = None
    if inp.compress and not prune:  # a pruned search winner fits already
        compressed = stages.run(name("compress"), {"from": train_out.best_sha256, "budget": budget.model_dump()},
                                lambda resume: st.stage_compress(final_run, root / "compress", budget, opts,
                                                                 inp.quiet),
                                rec.Compressed, workdir=root / "compress")
        final_run = Path(compressed.run_dir)
        source_sha = compressed.best_sha256
    else:
        source_sha = train_out.best_sha256
    art_dir = root / "artifacts"
    exported = stages.run(name("export"), {"from": source_sha, "formats": inp.formats, "precision": inp.precision,
                                           "io": budget.io},
                          lambda resume: st.stage_export(final_run, art_dir, inp.formats, inp.precision, budget.io),
                          rec.Exported, workdir=art_dir)
    evaluated = stages.run(name("evaluate"), {"artifacts": exported.sha256},
                           lambda resume: st.stage_evaluate(art_dir, final_run), rec.Evaluated)
    qat = None
    lost = st.int8_lost(exported, evaluated, budget) if inp.precision == "int8" else None
    if inp.precision == "int8" and (opts.qat == "always" or (opts.qat == "auto" and lost)):
        qat_run, qat_art = root / "qat", root / "artifacts-qat"
        trained = stages.run(name("qat"), {"from": source_sha, "epochs": QAT_EPOCHS, "batch_size": opts.batch_size},
                             lambda resume: st.stage_qat(final_run, qat_run, opts, inp.quiet), rec.QatTrained,
                             workdir=qat_run)
        ex_q = stages.run(name("export_qat"), {"from": trained.best_sha256, "formats": inp.formats,
                                               "precision": inp.precision, "io": budget.io},
                          lambda resume: st.stage_export(qat_run, qat_art, inp.formats, inp.precision, budget.io),
                          rec.Exported, workdir=qat_art)
        ev_q = stages.run(name("evaluate_qat"), {"artifacts": ex_q.sha256},
                          lambda resume: st.stage_evaluate(qat_art, qat_run), rec.Evaluated)
        kept = st.score(ex_q, ev_q) > st.score(exported, evaluated)
        qat = rec.QatOutcome(why="forced (--qat always)" if opts.qat == "always" else lost, epochs=QAT_EPOCHS,
                             kept=kept, before=rec.Int8Result.of(exported, evaluated),
                             after=rec.Int8Result.of(ex_q, ev_q))
        if kept:
            final_run, art_dir, exported, evaluated = qat_run, qat_art, ex_q, ev_q
            source_sha = trained.best_sha256
    return CandidatePath(train_out, compressed, exported, evaluated, qat, final_run, art_dir, source_sha)


def next_candidates(sel: rec.Selected, searched: rec.Searched | None, tried: list[str]) -> list[str]:
    """The candidates after those `tried`, best first: the search's ranking when one ran, else select's."""
    order = [t["name"] for t in searched.tried] if searched else [c["name"] for c in sel.feasible]
    return [n for n in order if n not in tried]


def failure(path: CandidatePath) -> str:
    p = path.exported.parity
    after = "after quantization-aware training" if path.qat is not None else "after post-training quantization"
    return (f"{path.name}'s int8 artifact failed parity {after} (lowest top-1 agreement {p.lowest_agreement:.3f} "
            f"< {p.required_agreement})")
