"""The `executorch` bundle: an ExecuTorch program (.pte) for the XNNPACK backend, made from the export's reference
checkpoint and checked with ExecuTorch's own runtime.

The network is rebuilt from the reference checkpoint in the export's deploy form (export/deploy_form.py), captured
with `torch.export`, lowered with `to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])` and
serialized with `.to_executorch()`. The written model.pte is then loaded by `executorch.runtime.Runtime` (the same
runtime, kernels and XNNPACK delegate a device links) and run on verify's parity images: it is written only when
its top-1 agreement with the PyTorch reference and its maximum relative error (verify's fp32 tolerances) hold.
fp32 only; batch size 1.
"""
from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .. import checkpoint
from ..errors import BadInput, NothingFits
from ..export.deploy_form import deploy_form
from ..export.parity import TOLERANCES, parity_inputs
from .bundle import BundleInputs, Written, sha256_file

PTE = "model.pte"
LABELS = "labels.txt"


def unavailable() -> str | None:
    """Why this target cannot be written on this machine (None: it can)."""
    if importlib.util.find_spec("executorch") is None:
        return ("the executorch package is not installed (pip install executorch; executorch 1.5.1 installs "
                "alongside torch 2.14.1)")
    return None


def _et_version() -> str:
    try:
        return version("executorch").split("+")[0]
    except PackageNotFoundError:  # a source checkout on the path
        return "unknown"


def _import_executorch():
    """ExecuTorch's lowering API and runtime; a build that does not load with this torch is one line."""
    import torch

    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime
    except (ImportError, OSError) as e:  # its native runtime is built against one torch release
        raise BadInput(f"executorch {_et_version()} does not load with torch {torch.__version__} "
                       f"({str(e).splitlines()[0][:160]}); install the executorch release built for this torch, "
                       "or drop --target executorch") from None
    return XnnpackPartitioner, to_edge_transform_and_lower, Runtime


def lower(model, resolution: int):
    """`model` as an ExecuTorch program for XNNPACK (input [1, 3, resolution, resolution] float32) and the names of
    the ops left outside the XNNPACK delegate (run by ExecuTorch's CPU kernels)."""
    import torch

    XnnpackPartitioner, to_edge_transform_and_lower, _ = _import_executorch()
    example = (torch.zeros(1, 3, resolution, resolution),)
    with torch.no_grad():
        exported = torch.export.export(model, example)
    edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    graph = edge.exported_program().graph_module.graph
    outside = [str(n.target) for n in graph.nodes
               if n.op == "call_function" and "call_delegate" not in str(n.target) and "getitem" not in str(n.target)]
    delegates = sum(1 for n in graph.nodes if n.op == "call_function" and "call_delegate" in str(n.target))
    return edge.to_executorch(), delegates, outside


def run_pte(path: Path, xs):
    """Logits of the program at `path` for the NCHW float32 images `xs`, one image per call (batch 1), with
    ExecuTorch's Python runtime."""
    import numpy as np
    import torch

    _, _, Runtime = _import_executorch()
    method = Runtime.get().load_program(path).load_method("forward")
    return np.concatenate([method.execute([torch.from_numpy(np.ascontiguousarray(x[None]))])[0].numpy()
                           for x in xs])


def write(inp: BundleInputs, folder: Path) -> Written:
    import numpy as np

    res = int(inp.preprocess["resolution"])
    # first: a missing image folder is reported before the minute of lowering
    p = parity_inputs(inp.art_dir, inp.data, inp.samples)
    model = deploy_form(checkpoint.build_model(checkpoint.load(inp.reference_path)))
    program, delegates, outside = lower(model, res)
    pte = folder / PTE
    pte.write_bytes(program.buffer)

    y = run_pte(pte, p.xs)
    tol = TOLERANCES["fp32"]
    out_range = float(p.ref.max() - p.ref.min()) or 1.0
    max_abs = float(np.abs(y - p.ref).max())
    rel = max_abs / out_range
    agreement = float((y.argmax(1) == p.ref.argmax(1)).mean())
    measured = (f"top-1 agreement {agreement:.3f} with the trained PyTorch model on {len(p.xs)} images, max relative "
                f"error {rel:.1e} (ExecuTorch {_et_version()} Python runtime, XNNPACK, fp32)")
    if agreement < tol["min_agreement"] or rel > tol["max_rel_error"]:
        raise NothingFits(f"the ExecuTorch program disagrees with the PyTorch model: {measured}; limits: agreement "
                          f">= {tol['min_agreement']}, relative error <= {tol['max_rel_error']:.0e}; not written")

    (folder / LABELS).write_text("".join(f"{c}\n" for c in inp.labels))
    (folder / "README.md").write_text(readme(inp, pte.stat().st_size, delegates, outside, measured))
    notes = [f"{PTE}: {pte.stat().st_size / 1024:.1f} KB, {measured}"]
    if outside:
        notes.append(f"{len(outside)} ops run outside XNNPACK (ExecuTorch's CPU kernels): "
                     f"{', '.join(sorted(set(outside)))}")
    facts = {"file": PTE, "size_bytes": pte.stat().st_size, "sha256": sha256_file(pte),
             "executorch_version": _et_version(), "backend": "XNNPACK", "precision": "fp32",
             "input_shape": f"1x3x{res}x{res}", "xnnpack_partitions": delegates, "ops_outside_xnnpack": len(outside),
             "parity_images": int(len(p.xs)), "top1_agreement": agreement, "max_rel_error": rel,
             "max_abs_error": max_abs}
    return Written(notes=notes, facts=facts, parity=measured)


def readme(inp: BundleInputs, size: int, delegates: int, outside: list[str], parity: str) -> str:
    pp, labels = inp.preprocess, inp.labels
    res, n = int(pp["resolution"]), len(labels)
    ver = _et_version()
    crop = pp.get("resize_method") or f"resize the shorter side to {pp['resize']} ({pp['interpolation']}), crop {res}"
    kernels = ("All of the network runs in the XNNPACK delegate" if not outside else
               f"{len(outside)} ops run outside XNNPACK ({', '.join(sorted(set(outside)))}): link ExecuTorch's "
               "optimized/portable CPU kernels too")
    return f"""# {inp.variant}: ExecuTorch program (XNNPACK)

- `{PTE}` ({size / 1024:.1f} KB): the network as an ExecuTorch program, fp32, {delegates} XNNPACK partition(s).
  {kernels}.
- `{LABELS}`: the {n} class names, one per line, in output order.
- Made with executorch {ver} from the export's reference checkpoint.
- Parity, measured when this bundle was written: {parity}.

## Input and output

- Input: one float32 tensor `[1, 3, {res}, {res}]` (NCHW, RGB), batch 1.
- Output: one float32 tensor `[1, {n}]` of logits; the label is `labels.txt` line `argmax` (0-based); apply a
  softmax for scores.

## Preprocessing (as in training; any difference costs accuracy)

1. Decode as RGB (EXIF orientation applied).
2. {crop[:1].upper() + crop[1:]} (crop offset `round((size - {res}) / 2)`).
3. Scale to [0, 1], then per channel `(x - mean) / std` with mean = {list(pp["mean"])}, std = {list(pp["std"])}.
4. Lay out as planar CHW (R plane, then G, then B).

## Check it on a computer (Python)

```bash
pip install executorch=={ver}
python - <<'EOF'
import torch
from executorch.runtime import Runtime
method = Runtime.get().load_program("{PTE}").load_method("forward")
x = torch.zeros(1, 3, {res}, {res})  # your preprocessed image here
logits = method.execute([x])[0]
labels = open("{LABELS}").read().split("\\n")
print(labels[int(logits.argmax())])
EOF
```

## C++ (Linux, Android NDK, embedded Linux)

Build ExecuTorch {ver} with the XNNPACK backend and try the program with its runner (random input):

```bash
git clone -b v{ver} --recursive https://github.com/pytorch/executorch && cd executorch
cmake -DCMAKE_BUILD_TYPE=Release -DEXECUTORCH_BUILD_XNNPACK=ON -DEXECUTORCH_BUILD_EXTENSION_MODULE=ON \\
      -DEXECUTORCH_BUILD_EXTENSION_DATA_LOADER=ON -DEXECUTORCH_BUILD_EXTENSION_TENSOR=ON -Bcmake-out .
cmake --build cmake-out -j --target install --config Release
./cmake-out/backends/xnnpack/xnn_executor_runner --model_path=/path/to/{PTE}
```

In your program (link `executorch`, `executorch::backends`, `executorch::extensions`, `executorch::kernels`):

```cpp
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
using namespace ::executorch::extension;

Module module("{PTE}");
static float input[1 * 3 * {res} * {res}];  // preprocessed as above, CHW
auto tensor = from_blob(input, {{1, 3, {res}, {res}}});
const auto result = module.forward(tensor);
if (result.ok()) {{
  const float* logits = result->at(0).toTensor().const_data_ptr<float>();  // {n} values
}}
```

## Android

Add `implementation("org.pytorch:executorch-android:{ver}")` (its AAR holds the runtime, XNNPACK and the CPU
kernels), copy `{PTE}` into the app's files, then:

```java
Module module = Module.load(getFilesDir() + "/{PTE}");
Tensor input = Tensor.fromBlob(chw, new long[] {{1, 3, {res}, {res}}});  // float[] preprocessed as above
float[] logits = module.forward(EValue.from(input))[0].toTensor().getDataAsFloatArray();
```

## iOS / macOS

In Xcode: File > Add Package Dependencies, `https://github.com/pytorch/executorch`, branch `swiftpm-{ver}`; link
`executorch`, `backend_xnnpack` and `kernels_optimized`, and add `-all_load` to Other Linker Flags so the backend
and kernels register at start-up. Add `{PTE}` to the app bundle and run it with the C++ `Module` API above (from
Objective-C++) or the framework's Swift `Module` class. For Core ML itself, see edgefit's `coreml` target.
"""
