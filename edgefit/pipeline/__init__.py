"""`edgefit build`: a budget and a folder of images in, a verified deployable model and a verdict out.

    select -> [search: short fine-tunes of the K best candidates, ranked by measured accuracy]
    -> train the winner -> compress if no variant meets the cost lines -> export -> verify parity
    -> evaluate the final artifact on held-out test images -> bench on this host
    -> errors of the final artifact on the test split -> report (with the training diagnostics and data checks)

Every stage records its outputs (a typed record, records.py) with a hash of its inputs under
BUILD_DIR/stages, so a rerun skips finished stages and an interrupted build continues where it stopped.

    from edgefit.pipeline import BuildOptions, build
    result = build("budgets/pi-zero-2w.yaml", BuildOptions(data="runs/demo-data", out="runs/demo-build"))
    print(result.passed, result.out / "report.md")
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..deploy.write import check_available, parse_targets
from ..device.probe import cpu_model
from ..errors import BadInput
from ..precision import Precision
from ..train.config import TrainConfig
from . import candidate as cand
from . import records as rec
from . import steps as st
from .joint import variant_of
from .runs import TEST_FRACTION, VAL_FRACTION
from .search import SearchOptions
from .stages import Stages


@dataclass
class BuildOptions:
    data: str
    out: str = "runs/build"
    search: int = 0  # candidates to try on the user's data (0: the best-ranked is trained directly)
    search_pruned: int | None = None  # places of those for larger variants pruned to fit; None: half (joint.py)
    epochs: int = TrainConfig.epochs
    weights: str | None = None  # imagenet | none | PATH; default: the variant's pretrained weights
    formats: str | None = None  # default: onnx,tflite; tflite alone for a microcontroller (runtime: tflite-micro)
    batch_size: int = TrainConfig.batch_size  # one set of training defaults for train and build
    seed: int = 0
    objective: str = "accuracy"
    max_resolution: int | None = None  # e.g. the images' own size: upsampling adds cost, not detail
    host_is_target: bool = False
    qat: str = "auto"  # auto: when post-training int8 loses parity or accuracy | always | never
    interrupt_after: int | None = None  # testing hook: stop the final training as if killed
    search_options: SearchOptions = field(default_factory=SearchOptions)  # executor (local | ray) and ASHA
    nproc: int = 1  # processes of the training stage (torchrun, DistributedDataParallel)
    targets: str | None = None  # deploy bundles to write from the final artifacts (deploy/targets.py)

    def validate(self) -> None:
        if self.search < 0 or self.epochs < 1:
            raise BadInput("--search must be 0 or more and --epochs 1 or more")
        if self.search_pruned is not None and not 0 <= self.search_pruned <= self.search:
            raise BadInput(f"--search-pruned must be between 0 and --search ({self.search}), got {self.search_pruned}")
        if self.max_resolution is not None and self.max_resolution < 32:
            raise BadInput(f"--max-resolution must be 32 or more, got {self.max_resolution}")
        if self.nproc < 1 or self.batch_size % self.nproc:
            raise BadInput(f"--nproc must be 1 or more and divide --batch-size ({self.batch_size}), the global batch; "
                           f"got {self.nproc}")
        if self.batch_size < 1:
            raise BadInput(f"--batch-size must be 1 or more, got {self.batch_size}")
        if self.qat not in ("auto", "always", "never"):
            raise BadInput(f"--qat must be auto, always or never, got {self.qat!r}")
        self.search_options.validate()
        from ..export.formats import plan

        if self.formats is not None:
            plan(self.formats, "int8")
        check_available(parse_targets(self.targets))


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
    micro = budget.runtime == "tflite-micro"
    formats = opts.formats or ("tflite" if micro else "onnx,tflite")  # a microcontroller runs the .tflite only
    if micro and "tflite" not in formats:
        raise BadInput(f"{budget_path} targets TFLite Micro (runtime: tflite-micro), which runs .tflite files; "
                       "add tflite to --format")
    budget = budget.with_num_classes(n)
    targets = parse_targets(opts.targets)
    for t in targets:  # what each bundle is made of must be among the build's artifacts (checked before any work)
        if t.format is not None and t.format not in formats.split(","):
            raise BadInput(f"--target {t.name} is made from a {t.format} artifact; add {t.format} to --format")
        if t.io == "int8" and not micro:
            raise BadInput(f"--target {t.name} needs a budget for a microcontroller (runtime: tflite-micro), whose "
                           f"build exports the int8 graph TFLite Micro runs; {budget_path} is not one")
        if t.format == "tflite" and t.io is None and micro:
            raise BadInput(f"--target {t.name} runs the float-input .tflite; a runtime: tflite-micro build exports "
                           "int8 input/output: use --target tflite-micro, or `edgefit export` for this target")
    (out / "stages").mkdir(parents=True, exist_ok=True)  # marks the folder as a build from here on
    atomic_write_json(out / "split.json", split.to_dict())
    stages = Stages(out, say)
    base = {"split": split.digest(), "seed": opts.seed, "edgefit": __version__}

    joint = {"search": opts.search, "search_pruned": opts.search_pruned} if opts.search else {}
    sel = stages.run("select", {"budget": budget.model_dump(), "objective": opts.objective, **base,
                                "max_resolution": opts.max_resolution, "weights": opts.weights, "zoo": cache_key(n),
                                **joint},
                     lambda resume: st.stage_select(budget, opts.objective, opts.max_resolution, opts.weights,
                                                    opts.search, opts.search_pruned, say),
                     rec.Selected)
    winner, prune = sel.chosen, 0.0
    pool = sel.search_pool(opts.search)
    searched, max_t = None, opts.epochs
    if len(pool) > 1:
        names = [c["name"] for c in pool]
        so = opts.search_options
        grace, max_t = so.rungs(opts.epochs)
        searched = stages.run("search", {"candidates": names, "grace": grace, "epochs_max": max_t,
                                         "reduction": so.reduction_factor, "weights": opts.weights,
                                         "batch_size": opts.batch_size, **base,
                                         **({"ray": so.to_dict()} if so.executor == "ray" else {})},
                              lambda resume: st.stage_search(pool, split, opts, budget.precision, out / "search",
                                                             quiet, say),
                              rec.Searched, workdir=out / "search", resumable=True)
        winner, prune = variant_of(sel.candidate(searched.winner))

    def kept_run(name: str) -> Path | None:
        """The search's run of `name` when it is already the final training: it ran the build's whole schedule, or
        stopped early on its own (not stopped by the search's rungs)."""
        trial = searched.trial(name) if searched else None
        if trial is None or max_t != opts.epochs or opts.nproc != 1 or \
                not trial["stopped_because"].startswith(("ran all", "early stop")) or \
                not (Path(trial["run_dir"]) / "summary.json").is_file():
            return None
        n = trial["epochs"]
        say(f"[train] {name} ran {n} of {opts.epochs} epochs in the search"
            f"{' (stopped early)' if n < opts.epochs else ''}: that run is the final training, not trained again")
        return Path(trial["run_dir"])

    precision = Precision.parse(budget.precision).value
    inp = cand.PathInputs(opts, split, base, budget, formats, precision, sel.needs_compress, quiet, say)
    first = searched.winner if searched else sel.chosen
    paths = [cand.run_candidate(stages, inp, winner, prune, out, kept_run=kept_run(first),
                                interrupt_after=opts.interrupt_after)]
    if precision == "int8" and not (sel.needs_compress and not prune):  # a pruned nearest miss has no alternative
        for name in cand.next_candidates(sel, searched, [first])[:cand.PARITY_TRIES - 1]:
            if any(p.exported.parity.passed for p in paths):
                break
            say(f"[parity] {cand.failure(paths[-1])}: trying the next candidate, {name}")
            v, pr = variant_of(sel.candidate(name))
            paths.append(cand.run_candidate(stages, inp, v, pr, out / "next" / name, f"@{name}", kept_run(name)))
    path = max(paths, key=lambda p: st.score(p.exported, p.evaluated))  # the first of equals: the better ranked
    tries = [p.parity_try(p is path) for p in paths] if len(paths) > 1 else []
    train_out, compressed, exported, evaluated, qat = path.train, path.compressed, path.exported, path.evaluated, \
        path.qat
    final_run, art_dir, source_sha = path.final_run, path.art_dir, path.source_sha
    choice = None
    if opts.host_is_target and precision == "int8" and not micro:  # int8 is not faster on every CPU (speed.py)
        fp_dir = out / "artifacts-fp32"
        ex_f = stages.run("export_fp32", {"from": source_sha, "formats": formats, "precision": "fp32",
                                          "io": budget.io},
                          lambda resume: st.stage_export(final_run, fp_dir, formats, "fp32", budget.io),
                          rec.Exported, workdir=fp_dir)
        ev_f = stages.run("evaluate_fp32", {"artifacts": ex_f.sha256},
                          lambda resume: st.stage_evaluate(fp_dir, final_run), rec.Evaluated)
        choice = stages.run("precision", {"int8": exported.sha256, "fp32": ex_f.sha256, "budget": budget.model_dump(),
                                          "host": cpu_model()},  # a timing of this host, not of another
                            lambda resume: st.stage_precision(art_dir, exported, evaluated, fp_dir, ex_f, ev_f,
                                                              budget), rec.PrecisionChoice)
        say(f"[precision] {choice.chosen}: {choice.why}")
        if choice.chosen == "fp32":
            art_dir, exported, evaluated = fp_dir, ex_f, ev_f
    benched = stages.run("bench", {"artifacts": exported.sha256, "budget": budget.model_dump(),
                                   "host_is_target": opts.host_is_target},
                         lambda resume: st.stage_bench(art_dir, exported.final, budget, opts.host_is_target),
                         rec.Benched)
    errs = stages.run("errors", {"artifacts": exported.sha256, "final": exported.final},
                      lambda resume: st.stage_errors(art_dir, exported.final, out / "errors"), rec.Errors,
                      workdir=out / "errors")
    deployed = None
    if targets:
        deployed = stages.run("deploy", {"artifacts": exported.sha256, "targets": [t.name for t in targets]},
                              lambda resume: st.stage_deploy(art_dir, ",".join(t.name for t in targets)),
                              rec.Deployed)
    outputs = report_mod.StageOutputs(sel, searched, train_out, compressed, exported, evaluated, benched, qat, errs,
                                      deployed, choice, tries)
    rep = report_mod.make(budget, budget_path, opts, outputs, stages.times, art_dir)
    report_mod.write(rep, out)
    return BuildResult(rep, out)
