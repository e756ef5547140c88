"""`edgefit build`: a budget and a folder of images in, a verified deployable model and a verdict out."""
from __future__ import annotations

import json

import click

from ..train.config import TrainConfig


@click.command("build")
@click.argument("budget_file", metavar="BUDGET")
@click.option("--data", required=True, type=click.Path(), help="Folder of class folders, or train/ val/ test/.")
@click.option("--out", default="runs/build", show_default=True, help="Build directory (rerun to continue it).")
@click.option("--search", type=click.IntRange(min=0), default=0, show_default=True,
              help="Train the K best candidates on your data under successive halving and keep the most "
                   "accurate.")
@click.option("--search-pruned", type=click.IntRange(min=0), default=None,
              help="Of the K, places for larger variants pruned to fit the budget (trained with that share of "
                   "channels removed), competing with those that fit as they are [half of K, and every place "
                   "the fitting variants leave free; 0: none].")
@click.option("--epochs", type=click.IntRange(min=1), default=TrainConfig.epochs, show_default=True,
              help="Training epochs of the winner.")
@click.option("--search-epochs", type=click.IntRange(min=1), default=None,
              help="The most a search run trains, on that schedule [--epochs: the last candidate standing "
                   "has then run the final training].")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Search runs, successive halving on validation top-1: local (one run at a time) or ray "
                   "(Ray Tune trials under ASHA; pip install 'edgefit[ray]').")
@click.option("--address", default=None, help="With --executor ray: a running Ray cluster [start one here].")
@click.option("--asha-grace", type=click.IntRange(min=1), default=None,
              help="Epochs every candidate trains before the search may stop it [a quarter of --search-epochs, at "
                   "least 2].")
@click.option("--asha-reduction", type=click.IntRange(min=2), default=2, show_default=True,
              help="At each rung of the search the best 1/N of the candidates go on.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train the winner on N local processes (torchrun, DistributedDataParallel; one per GPU).")
@click.option("--weights", default=None,
              help="imagenet | none | PATH. Default: imagenet where the zoo has weights, else none.")
@click.option("--formats", "--format", "formats", default=None,
              help="Export formats, at the budget's precision (--format as in `edgefit export`) "
                   "[onnx,tflite; tflite for runtime: tflite-micro].")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-resolution", type=int, default=None,
              help="Only variants with inputs this size or smaller (e.g. your images' size).")
@click.option("--qat", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Quantization-aware training: auto when post-training int8 loses parity or accuracy.")
@click.option("--host-is-target", is_flag=True,
              help="This host is the target: gate on the FPS measured here, and keep fp32 where int8 runs over "
                   "1.1x slower here and fp32 misses no line int8 meets.")
@click.option("--target", "targets", default=None,
              help="Deploy bundles to write from the final verified artifacts (comma list): tflite-micro, linux, "
                   "web, android, coreml, executorch (as `edgefit export --target`).")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the markdown report.")
def build_cmd(budget_file, data, out, search, search_pruned, epochs, search_epochs, executor, address, asha_grace,
              asha_reduction, nproc, weights, formats, batch_size, seed, max_resolution, qat, host_is_target, targets,
              as_json):
    """Select, train, (compress,) export, verify and bench a model for BUDGET on the images in --data.

    Writes report.md, report.json and report.png to --out; every budget line is measured on the
    final artifact. Rerunning the same command skips finished stages and continues an interrupted
    build. Exit 0 every line met, 1 a line missed (the report says which and what to try), 2 bad input.

    \b
    Example:
      edgefit demo-data runs/demo-data --classes 10 --per-class 200 --size 96
      edgefit build budgets/pi-zero-2w.yaml --data runs/demo-data --weights none \\
          --max-resolution 96 --search 2 --epochs 25 --out runs/demo-build
    """
    from ..pipeline import BuildOptions, build
    from ..pipeline.report import markdown
    from ..pipeline.search import SearchOptions

    opts = BuildOptions(data=data, out=out, search=search, search_pruned=search_pruned, epochs=epochs,
                        weights=weights, formats=formats, batch_size=batch_size, seed=seed,
                        max_resolution=max_resolution, host_is_target=host_is_target, qat=qat, nproc=nproc,
                        targets=targets,
                        search_options=SearchOptions(executor=executor, address=address, grace_period=asha_grace,
                                                     reduction_factor=asha_reduction,
                                                     max_epochs=search_epochs))
    try:
        result = build(budget_file, opts, quiet=False)  # epoch lines on stderr, as `edgefit train` prints
    except KeyboardInterrupt:
        click.echo(f"edgefit: interrupted; rerun the same command to continue the build in {out}", err=True)
        raise SystemExit(130) from None
    click.echo(json.dumps(result.report, indent=2) if as_json else markdown(result.report), nl=not as_json)
    if not as_json:
        click.echo(f"report: {result.out / 'report.md'} (report.json, report.png)")
    raise SystemExit(0 if result.passed else 1)
