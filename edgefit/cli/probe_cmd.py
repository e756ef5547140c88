"""`edgefit probe`: a folder to copy onto the target device, with the one script that times it there."""
from __future__ import annotations

import json

import click


@click.command("probe")
@click.argument("models", nargs=-1, metavar="ART_DIR|ARTIFACT...")
@click.option("--out", required=True, help="The probe folder to write (copy it to the device).")
@click.option("--runtime", default="litert", show_default=True, type=click.Choice(["litert", "onnxruntime"]),
              help="What the device runs: litert (.tflite; ai-edge-litert or tflite-runtime) or onnxruntime (.onnx).")
@click.option("--calibration-set", "calibration", default="none", show_default=True,
              type=click.Choice(["none", "small", "full"]),
              help="Also zoo networks (and for LiteRT their cut-out kernels) for `edgefit calibrate --from`: small "
                   "(up to 12 networks within 45 MB written) or full (every zoo variant); some of them pruned.")
@click.option("--calibration-networks", "networks", type=int, default=None,
              help="How many calibration networks (overrides the set's count; at least 6).")
@click.option("--precision", default=None, type=click.Choice(["fp32", "int8"]),
              help="The calibration networks' precision [int8 for litert, fp32 for onnxruntime].")
@click.option("--exclude-variants", default="", metavar="A,B,...", help="Zoo variants to leave out of the set.")
@click.option("--threads", type=int, default=None, help="Threads probe.py uses by default [all the device's cores].")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON only.")
def probe_cmd(models, out, runtime, calibration, networks, precision, exclude_variants, threads, as_json):
    """Write a probe folder: copy it to the device, run `python3 probe.py --out results.json` there (numpy and
    the runtime only), and bring results.json back for `bench --on-target` or `calibrate --from`.

    \b
    Example:
      edgefit probe runs/demo-build/artifacts --out probe-pi --calibration-set small
    """
    from ..benchmark.probe_pack import pack

    def progress(i, n, name):
        if not as_json:
            click.echo(f"  packing {name} ({i + 1}/{n})", err=True)

    exclude = tuple(v.strip() for v in exclude_variants.split(",") if v.strip())
    folder = pack(list(models), out, runtime, calibration, threads, precision, networks, exclude, progress)
    if as_json:
        click.echo(json.dumps(folder.to_dict(), indent=2))
        return
    click.echo(f"wrote {folder.directory}/ ({folder.size_bytes / 2**20:.1f} MB): {len(folder.artifacts)} artifact(s)"
               + (f", {len(folder.networks)} calibration networks" if folder.networks else "")
               + (f" and {folder.kernels} kernels" if folder.kernels else ""))
    click.echo(f"on the device: pip install numpy {'ai-edge-litert' if runtime == 'litert' else 'onnxruntime'}; "
               f"python3 {folder.directory}/probe.py --out results.json")
