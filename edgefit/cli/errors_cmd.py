"""`edgefit errors`: the mistakes of a model, ready to tag; and the table of a tagged sheet."""
from __future__ import annotations

from pathlib import Path

import click

from .common import emit_json


@click.command("errors")
@click.argument("model", required=False, metavar="MODEL")
@click.option("--data", default=None, help="Any labelled folder (class folders) [the run's split].")
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Which split of the model's training run.")
@click.option("--out", default=None, help="Output folder [RUN_DIR/errors, or errors-<artifact> beside an artifact].")
@click.option("--tags", "tags", default=None, metavar="FILE.csv",
              help="Read a tagged errors.csv and print the share of the errors per tag.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only (edgefit-errors/1 or edgefit-error-tags/1).")
def errors_cmd(model, data, split, out, tags, as_json):
    """Evaluate MODEL (a training run, or an .onnx/.tflite artifact in its own runtime) and write
    errors.csv (one row per mistake, empty tag columns to fill by hand), errors.json, confusion.png and
    gallery.png/.html. With --tags FILE.csv, read the filled sheet: per tag, its share of the errors and
    the error rate if every error with that tag were fixed; that share bounds what fixing it can gain.

    \b
    Example:
      edgefit errors runs/demo-build/train --out runs/demo-errors
      edgefit errors --tags runs/demo-errors/errors.csv
    """
    from ..errors import BadInput

    if tags:
        if model:
            raise BadInput("give either MODEL or --tags FILE.csv, not both")
        from ..error_analysis import read_tags

        table = read_tags(tags)
        if as_json:
            emit_json(table)
            return
        click.echo(f"{table['errors']} errors of {table['n']} images: error rate {table['error_rate']:.1%}"
                   + (f" ({table['untagged']} untagged)" if table["untagged"] else ""))
        click.echo(f"{'tag':<20} {'count':>6} {'share':>7}  error rate if all fixed")
        for t in table["tags"]:
            click.echo(f"{t['tag'][:20]:<20} {t['count']:>6} {t['share']:>7.1%}  {t['ceiling_error_rate']:.1%}")
        return
    if not model:
        raise BadInput("give MODEL (a training run or an artifact) or --tags FILE.csv")
    from ..error_analysis import analyse

    p = Path(model)
    default = p / "errors" if p.is_dir() else p.parent / f"errors-{p.stem}"
    report = analyse(model, data=data, split=split, out=out or default)
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"{report.model} ({report.runtime}) on {report.split}: top-1 {report.top1:.3f}, "
               f"{len(report.errors)} of {report.n} wrong")
    for pair in report.pairs[:5]:
        click.echo(f"  {pair['true']} -> {pair['predicted']}: {pair['count']}")
    worst = sorted(report.per_class, key=lambda s: s["recall"])[:3]
    click.echo("lowest recall: " + ", ".join(f"{s['class']} {s['recall']:.2f}" for s in worst))
    click.echo(f"wrote {out or default}/" + ", ".join(report.files)
               + f"; tag the rows of errors.csv, then: edgefit errors --tags {out or default}/errors.csv")
