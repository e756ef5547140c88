"""Quantization-aware training with PyTorch's maintained quantization stack (torchao PT2E).

The network is captured with `torch.export`, fake quantizers are inserted by `prepare_qat_pt2e` with a
scheme that matches what `edgefit export` deploys (per-channel symmetric int8 weights on batch-norm
folded convolutions, per-tensor affine 8-bit activations: the recipe of onnxruntime's static QDQ and of
the TFLite int8 converter), and the usual training loop fine-tunes it. The trained float weights and
batch-norm statistics are then read back into the ordinary network, so the result is a normal
checkpoint that goes through the same export path (float ONNX -> calibrated int8 ONNX / TFLite) and
`verify`; the weights it carries have learned to survive that rounding.
"""
from __future__ import annotations

from torch import nn


class QatModel(nn.Module):
    """A zoo network with fake quantization; `float_state_dict()` gives the plain network's weights."""

    def __init__(self, model: nn.Module, resolution: int):
        super().__init__()
        import torch
        from torchao.quantization.pt2e import allow_exported_model_train_eval
        from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xq

        model = model.eval().to(memory_format=torch.contiguous_format)
        self._template = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.pretrained_cfg = getattr(model, "pretrained_cfg", {})
        x = torch.zeros(2, 3, resolution, resolution)
        graph = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim.AUTO},)).module()
        quantizer = xq.X86InductorQuantizer().set_global(xq.get_default_x86_inductor_quantization_config(is_qat=True))
        self.graph = prepare_qat_pt2e(graph, quantizer)
        allow_exported_model_train_eval(self.graph)

    def forward(self, x):
        return self.graph(x)

    def float_state_dict(self) -> dict:
        """The plain network's state dict (fake-quantizer state dropped; counters kept from the source)."""
        sd = self.graph.state_dict()
        return {k: (sd[k] if k in sd else t).detach().cpu().clone() for k, t in self._template.items()}


def int8_onnx_top1(model: nn.Module, source, calib_samples: int = 200, samples: int | None = None) -> float:
    """Validation top-1 of the int8 ONNX that `edgefit export` would write for `model` (static QDQ,
    calibrated on the run's training images), run in onnxruntime."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..data.images import split_images
    from ..export.onnx_export import quantize_int8, to_onnx_bytes
    from ..runtimes import runner

    res = source.preprocess["resolution"]
    calib = split_images(source, "train", None, calib_samples).x
    val = split_images(source, "val", None, samples)
    x, labels = val.x, val.labels
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        fp32.write_bytes(to_onnx_bytes(model, res, {}))
        q = Path(tmp) / "model_int8.onnx"
        quantize_int8(fp32, q, calib.numpy().astype(np.float32), {})
        preds = runner(q)(x.numpy()).argmax(1)
    return float((preds == labels).mean())
