"""`edgefit export` and `edgefit verify`."""
from __future__ import annotations

import json

import click

from ..deploy.targets import TARGETS
from ..vocabulary import INT8_GRAPH_RUNTIMES


def _print_report(report: dict) -> None:
    click.echo(f"parity on {report['samples']} images ({report['images']}); PyTorch top-1 "
               f"{report['torch_top1_accuracy']:.3f}")
    for r in report["artifacts"]:
        err = f"max rel err {r['max_rel_error']:.1e}  " if r["precision"] != "int8" else ""
        status = "ok" if r["passed"] else "FAIL: " + "; ".join(r["reasons"])
        click.echo(f"  {r['file']:<20} {err}top-1 agreement {r['top1_agreement']:.3f}  "
                   f"top-1 {r['top1_accuracy']:.3f}  {status}")
        d = r.get("first_divergence")
        if d:
            err = (f"rel err {d['max_rel_error']:.1e}" if d["max_rel_error"] is not None
                   else "no TFLite tensor of its shape")
            twin = f"; TFLite tensor {d['tflite_tensor']} ({d['mapped']})" if d.get("tflite_tensor") else ""
            click.echo(f"    first diverging layer: {d['node']} ({d['op_type']}, output {d['output']}, {err}){twin}")
        if "layers" in r:
            _print_layers(r)


def _print_layers(r: dict, top: int = 10) -> None:
    layers = r["layers"]
    if layers is None:
        click.echo(f"    per-layer error: not measured: {r['layers_not_measured']}")
        return
    if "requantized_agreement" in r:
        click.echo(f"    LiteRT's quantization debugger requantized it (calibration: {r['layers_calibration']}): "
                   f"agreement {r['requantized_agreement']:.3f} vs the artifact's {r['artifact_agreement']:.3f}")
    click.echo(f"    {min(top, len(layers))} worst of {len(layers)} quantized layers (median channel SQNR, dB; "
               "low = int8 loses the signal there):")
    for x in layers[:top]:
        vs = f"  vs float {x['vs_float_db']:6.1f}" if "vs_float_db" in x else ""
        click.echo(f"      {x['channel_sqnr_db']:6.1f}  tensor {x['tensor_sqnr_db']:6.1f}{vs}  {x['op_type']:<18} "
                   f"{x['node']}")


def _print_fallback(a: dict) -> None:
    fb = a.get("float_fallback")
    if not fb:
        return
    if "not_tried" in fb:
        click.echo(f"  {a['file']}: int8 agreement {fb['agreement_before']:.3f} failed; no float fallback: "
                   f"{fb['not_tried']}")
    elif fb["passed"]:
        click.echo(f"  {a['file']}: int8 agreement {fb['agreement_before']:.3f} failed; kept "
                   f"{len(fb['float_tensors'])} sensitive layer(s) float ({len(fb['float_nodes'])} nodes): "
                   f"agreement {fb['agreement']:.3f}, "
                   f"{fb['size_bytes_before'] / 1024:.1f} -> {fb['size_bytes'] / 1024:.1f} KB, p50 "
                   f"{fb['p50_ms_before']:.2f} -> {fb['p50_ms']:.2f} ms on this host")
    else:
        click.echo(f"  {a['file']}: int8 agreement {fb['agreement_before']:.3f} failed; keeping up to "
                   f"{fb['tried'][-1]['tensors'] if fb['tried'] else 0} tensors float did not pass "
                   f"(best {fb['agreement']:.3f}): try `edgefit compress RUN --qat`")


def _print_speeds(speeds: list[dict]) -> None:
    from ..export.speed import PrecisionSpeed  # the export package imports torch: not at CLI start-up

    for s in map(PrecisionSpeed.from_dict, speeds):
        click.echo(f"note: {s.note()}" if s.note() else f"on this host: {s.int8_file} p50 {s.int8_p50_ms:.3g} ms, "
                   f"{s.fp32_file} {s.fp32_p50_ms:.3g} ms (int8 / fp32 = {s.ratio:.2f}, {s.runtime})")


def _print_bundles(bundles) -> None:
    for b in bundles:
        click.echo(f"bundle {b.target}: {b.directory}/ ({', '.join(b.files)})")
        click.echo(f"  from {b.artifact or 'reference.pt'}; parity: {b.parity}")
        for note in b.notes:
            click.echo(f"  {note}")


@click.command("export")
@click.argument("source", metavar="RUN_DIR|CHECKPOINT|ART_DIR")
@click.option("--format", "formats", default=None, help="onnx, tflite (comma list) [onnx,tflite; with --target: "
              "what the targets need].")
@click.option("--precision", "precisions", default=None, help="fp32, fp16, int8 [fp32,int8; with --target: what "
              "the targets need].")
@click.option("--target", "targets", default=None, help="Deploy bundles to write beside the verified artifacts "
              f"(comma list): {', '.join(TARGETS)}. SOURCE may then be an export folder (ART_DIR).")
@click.option("--calib", default=None, help="Calibration image folder [the run's training split].")
@click.option("--calib-samples", type=int, default=500, show_default=True,
              help="Calibration images for int8 (more is steadier: 200 -> 500 cut the int8 drop on demo data).")
@click.option("--io", "io_type", type=click.Choice(["float", "int8"]), default=None,
              help="int8: int8 input/output tensors on the int8 TFLite (scale/zero-point in edgefit.json) [float; "
              "int8 for --target tflite-micro].")
@click.option("--int8-for", "int8_for", type=click.Choice(INT8_GRAPH_RUNTIMES), default=None,
              help="Runtime the int8 graph is shaped for: litert (XNNPACK on a CPU: hard-swish as ops XNNPACK "
              "takes) or tflite-micro (its own HARD_SWISH kernel, less RAM) [litert; tflite-micro for that target].")
@click.option("--out", required=True, help="Artifact directory (bundles go to OUT/<target>/).")
@click.option("--data", default=None, help="Images for verification [the run's validation split].")
@click.option("--samples", type=int, default=200, show_default=True, help="Images used by verify.")
@click.option("--max-rel-error", type=float, default=None,
              help="verify: bound on the max relative error of every artifact [fp32 1e-4, fp16 2e-2, int8 none].")
@click.option("--min-agreement", type=float, default=None,
              help="verify: top-1 agreement floor with the trained model [fp32 0.99, fp16 and int8 0.98].")
@click.option("--no-verify", is_flag=True, help="Skip the parity check (not with --target).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON only.")
def export_cmd(source, formats, precisions, targets, calib, calib_samples, io_type, int8_for, out, data, samples,
               max_rel_error, min_agreement, no_verify, as_json):
    """Export a trained model to ONNX / TFLite, verify the artifacts agree with it, and write deploy bundles.

    Exit 0 exported and verified, 1 parity failed (artifacts kept for inspection), 2 bad input (a bundle asked of
    an artifact that failed verify included).

    \b
    Example:
      edgefit export runs/demo-train --format onnx,tflite --precision fp32,fp16,int8 --out artifacts
      edgefit export runs/demo-train --target linux,web --out artifacts
      edgefit export runs/demo-build/artifacts --target android --out deploy
    """
    from ..deploy.write import check_available, is_export_folder, parse_targets, request, write_bundles
    from ..errors import BadInput
    from ..export import export

    wanted = parse_targets(targets)
    check_available(wanted)
    req = request(wanted, formats, precisions, io_type, int8_for, verify=not no_verify)
    manifest, report = None, None
    if is_export_folder(source):
        if not wanted:
            raise BadInput(f"{source} is an export folder; give --target to write bundles from it, or a run "
                           "directory to export")
        bundles = write_bundles(source, wanted, out, data=data, samples=samples)
    else:
        manifest = export(source, out, formats=req.formats, precisions=req.precisions, calib=calib,
                          calib_samples=calib_samples, io=req.io, verify=not no_verify, data=data, samples=samples,
                          int8_for=req.int8_for, max_rel_error=max_rel_error, min_agreement=min_agreement)
        report = manifest.get("verify")
        bundles = write_bundles(out, wanted, data=data, samples=samples) if wanted else []
    if as_json:
        click.echo(json.dumps({**(manifest or {}), "bundles": [b.to_dict() for b in bundles]}, indent=2))
    else:
        for a in (manifest or {}).get("artifacts", []):
            click.echo(f"wrote {out}/{a['file']:<20} {a['size_kb']:>9,.1f} KB  {a['format']} {a['precision']} "
                       f"{a['input_layout']} in={a['input']['dtype']}")
            slow = a.get("undelegated_ops") or a.get("float_islands")
            if slow:
                where = "outside XNNPACK" if "undelegated_ops" in a else "in float (onnxruntime)"
                click.echo(f"  {where}: " + ", ".join(f"{o['op']} x{o['count']}" for o in slow))
            _print_fallback(a)
        for n in (manifest or {}).get("not_written", []):
            click.echo(f"not written: {n['format']} {n['precision']}: {n['why']}")
        if report:
            _print_report(report)
        _print_speeds((manifest or {}).get("precision_speed", []))
        _print_bundles(bundles)
    if report and not report["passed"]:
        raise SystemExit(1)


@click.command("verify")
@click.argument("art_dir", metavar="ART_DIR")
@click.option("--data", default=None, help="Image folder [the training run's validation split].")
@click.option("--samples", type=int, default=200, show_default=True)
@click.option("--max-rel-error", type=float, default=None,
              help="Bound on the max relative error of every artifact [fp32 1e-4, fp16 2e-2, int8 none: "
              "its agreement is checked].")
@click.option("--min-agreement", type=float, default=None, help="Override the top-1 agreement floor (0.99/0.98).")
@click.option("--layers", is_flag=True, help="Also each int8 artifact's per-layer quantization error, worst first "
              "(median channel SQNR of every quantized tensor; TFLite through LiteRT's quantization debugger).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
def verify_cmd(art_dir, data, samples, max_rel_error, min_agreement, layers, as_json):
    """Check every artifact in ART_DIR against the PyTorch model (exit 0 parity holds, 1 it fails).

    \b
    Example:
      edgefit verify artifacts --samples 100
    """
    from ..export.verify import verify

    report = verify(art_dir, data=data, samples=samples, max_rel_error=max_rel_error, min_agreement=min_agreement,
                    layers=layers)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if not report["passed"]:
        raise SystemExit(1)
