"""`edgefit bench`: measured latency, budget verdicts and CI reports."""
from __future__ import annotations

import json

import click


@click.command("bench")
@click.argument("models", nargs=-1, metavar="MODEL...")
@click.option("--variant", "variants", default=None, metavar="NAME[,NAME...]",
              help="Untrained zoo variants to export and time here, before training anything.")
@click.option("--precision", "precisions", default=None, help="With --variant: the precisions to export "
              "[default: fp32,int8].")
@click.option("--calib", default=None, help="With --variant: images to calibrate int8 on (default: noise).")
@click.option("--num-classes", type=int, default=None, help="With --variant: classifier size [default: 1000].")
@click.option("--runtime", "runtimes", default="onnxruntime,litert,torch", show_default=True,
              help="Comma list of onnxruntime, litert, torch.")
@click.option("--device", "devices", default="cpu", show_default=True, help="Comma list of cpu, cuda.")
@click.option("--threads", type=int, default=0, show_default=True, help="Threads per runtime (0: its default).")
@click.option("--batch", type=int, default=1, show_default=True)
@click.option("--input-shape", default=None, metavar="N,C,H,W",
              help="The shape to time models whose input has dynamic dimensions at (required for those; "
                   "static inputs keep their own).")
@click.option("--budget", "budget_file", default=None, help="Judge every artifact against this budget.")
@click.option("--host-is-target", is_flag=True, help="The measured host FPS line gates the verdict.")
@click.option("--on-target", default=None, metavar="RESULTS.json",
              help="What `probe.py` measured on the device: target_fps is judged by that latency (the prediction "
                   "stays beside it). Needs --budget.")
@click.option("--data", default=None, help="Labelled images: adds the accuracy line for export directories.")
@click.option("--baseline", default=None, help="An earlier --json report: fail on a regression.")
@click.option("--min-runs", type=int, default=20, show_default=True)
@click.option("--min-seconds", type=float, default=1.0, show_default=True)
@click.option("--json", "json_out", is_flag=False, flag_value="-", default=None,
              help="Write the JSON report to FILE, or print it alone with no FILE.")
@click.option("--markdown", default=None, help="Write a Markdown report (e.g. $GITHUB_STEP_SUMMARY).")
@click.option("--junit", default=None, help="Write JUnit XML, one test case per budget line.")
@click.option("--plot", default=None, help="Write a PNG of the models against the budget lines.")
def bench_cmd(models, variants, precisions, calib, num_classes, runtimes, devices, threads, batch, input_shape,
              budget_file, host_is_target, on_target, data, baseline,
              min_runs, min_seconds, json_out, markdown, junit, plot):
    """Measure latency of MODEL... (.onnx, .tflite, edgefit checkpoints, export directories) on this host.

    Exit 0 when every budget line passes and nothing regressed, 1 otherwise, 2 bad input. Devices
    that are not available here (cuda without a GPU) are skipped with the reason in the report.

    \b
    Example:
      edgefit bench artifacts --budget budgets/raspberry-pi-4.yaml --markdown bench.md --junit bench.xml
      edgefit bench --variant mobilenet_v2_0.5_160,mobilenet_v3_small_1.0_224 --runtime litert
      edgefit bench artifacts/model_int8.tflite --budget budgets/pi-zero-2w.yaml --on-target results.json
    """
    from ..benchmark.api import BenchOptions, bench
    from ..benchmark.reports import junit as to_junit
    from ..benchmark.reports import markdown as to_markdown
    from ..benchmark.reports import plot as to_plot
    from ..benchmark.reports import write_text
    from ..budget import load_budget
    from ..errors import BadInput
    from ..fsutil import atomic_write_bytes

    budget = load_budget(budget_file) if budget_file else None
    opts = BenchOptions(runtimes=tuple(r.strip() for r in runtimes.split(",") if r.strip()),
                        devices=tuple(d.strip() for d in devices.split(",") if d.strip()), threads=threads,
                        batch=batch, min_runs=min_runs, min_seconds=min_seconds, data=data,
                        host_is_target=host_is_target, baseline=baseline, input_shape=_shape(input_shape),
                        on_target=on_target)
    if variants:
        from ..benchmark.variants import bench_variants

        names = [v.strip() for v in variants.split(",") if v.strip()]
        report = bench_variants(names, opts, budget, list(models), precisions or "fp32,int8", calib,
                                1000 if num_classes is None else num_classes)
    elif calib or precisions is not None or num_classes is not None:
        raise BadInput("--precision, --calib and --num-classes apply to --variant only; an artifact is timed as it is")
    elif not models:
        raise BadInput("give MODEL... (files or export directories) or --variant NAME[,NAME...]")
    else:
        report = bench(list(models), opts, budget)
    md = to_markdown(report)
    if json_out and json_out != "-":
        write_text(json_out, json.dumps(report, indent=2) + "\n")
    if markdown:
        write_text(markdown, md)
    if junit:
        atomic_write_bytes(junit, to_junit(report))
    if plot:
        to_plot(report, plot)
    click.echo(json.dumps(report, indent=2) if json_out == "-" else md)
    if not report["passed"]:
        raise SystemExit(1)


def _shape(text: str | None) -> tuple[int, ...] | None:
    from ..errors import BadInput

    if text is None:
        return None
    try:
        return tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise BadInput(f"--input-shape: '{text}' is not a list of integers; give e.g. 1,3,224,224") from None
