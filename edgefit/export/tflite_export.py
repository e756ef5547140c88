"""ONNX -> TFLite through onnx2tf: fp32, fp16 and full-integer int8 calibrated on the user's images.

onnx2tf converts the ONNX graph to a TensorFlow SavedModel and writes the float TFLite files from it. For int8
it would calibrate five quantized variants (dynamic range, integer, full integer, and two with int16
activations), each a pass over every calibration image; edgefit asks it for the SavedModel only and runs
TensorFlow's converter once, with onnx2tf's own settings, for the one variant the artifact needs (float or int8
input/output): the bytes are identical to onnx2tf's file (checked when this was written), in a third of the time.

onnx2tf downloads sample images from the internet for any fixed-batch 4-D image input, even when
calibration data is given; edgefit replaces that downloader with one returning the user's images,
so a conversion never touches the network.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgefitError
from ..fsutil import atomic_write_bytes

# onnx2tf names its files after the ONNX file: <stem>_float32.tflite, ...
OUTPUTS = {"fp32": "float32.tflite", "fp16": "float16.tflite"}


class ConversionFailed(EdgefitError):
    exit_code = 1


@contextlib.contextmanager
def quiet_fds():
    """TensorFlow's converter logs from C++ straight to file descriptors 1 and 2; keep them for errors."""
    import ctypes
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            ctypes.CDLL(None).fflush(None)  # C stdio buffers what the converter printf()s: flush it into the sink
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextlib.contextmanager
def _offline_samples(images_nhwc: np.ndarray):
    import onnx2tf.onnx2tf as core
    import onnx2tf.utils.common_functions as common

    saved = (core.download_test_image_data, common.download_test_image_data)

    def local_samples() -> np.ndarray:
        return images_nhwc

    core.download_test_image_data = common.download_test_image_data = local_samples
    try:
        yield
    finally:
        core.download_test_image_data, common.download_test_image_data = saved


def import_tensorflow():
    """TensorFlow, imported after triton: triton (torch's GPU compiler, which torch.utils.flop_counter and so
    edgefit.trace import) segfaults when it is first imported after TensorFlow in the same process
    (`import tensorflow; import triton` crashes here; the other order works)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import triton  # noqa: F401
    except ImportError:  # CPU-only torch builds have none: nothing to order
        pass
    import tensorflow

    return tensorflow


def _onnx2tf(onnx_path: Path, out: Path, calib_nhwc: np.ndarray) -> None:
    """onnx2tf: the SavedModel (with the signature and tensor names its int8 path uses) and the float TFLite files
    in `out`."""
    import_tensorflow()
    import onnx2tf
    import tf_keras

    # Keras numbers the layers it names (model_3/tf.math.add_142/...) across the process: start from zero, so a
    # graph's TFLite tensor names are the same in every process (quantization denylists are recorded by name)
    tf_keras.backend.clear_session()

    log = io.StringIO()
    npy = out.with_name(out.name + "_calib.npy")
    np.save(npy, calib_nhwc)
    try:
        with (_offline_samples(calib_nhwc), quiet_fds(), contextlib.redirect_stdout(log),
              contextlib.redirect_stderr(log)):
            onnx2tf.convert(
                input_onnx_file_path=str(onnx_path), output_folder_path=str(out), output_integer_quantized_tflite=False,
                output_signaturedefs=True,
                custom_input_op_name_np_data_path=[["input", str(npy), [[[[0.0, 0.0, 0.0]]]], [[[[1.0, 1.0, 1.0]]]]]],
                quant_type="per-channel", input_quant_dtype="int8", output_quant_dtype="int8",
                non_verbose=True, copy_onnx_input_output_names_to_tflite=True)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - onnx2tf exits on some errors
        tail = " | ".join(line for line in log.getvalue().splitlines()[-3:] if line.strip())
        raise ConversionFailed(f"onnx2tf could not convert {onnx_path.name}: {e!r} {tail}"[:400]) from None
    if not (out / "saved_model.pb").is_file():
        raise ConversionFailed(f"onnx2tf did not write a SavedModel for {onnx_path.name}")


def int8_from_saved_model(saved: Path, calib_nhwc: np.ndarray, io_type: str) -> bytes:
    """The full-integer int8 TFLite model of onnx2tf's SavedModel, converted as onnx2tf converts it (its
    `integer_quant` file for float input/output, `full_integer_quant` for int8): per-channel weights, builtin int8
    ops (select TF ops allowed), calibrated on `calib_nhwc` one image at a time, in order."""
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.SELECT_TF_OPS]
    converter._experimental_disable_per_channel = False
    converter.unfold_batchmatmul = False
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    (key,) = signature.structured_input_signature[1].keys()

    def representative():
        for i in range(len(calib_nhwc)):
            yield {key: tf.cast(tf.convert_to_tensor(calib_nhwc[i:i + 1]), tf.float32)}

    converter.representative_dataset = representative
    if io_type == "int8":
        converter.inference_input_type = converter.inference_output_type = tf.int8
    with quiet_fds():
        return bytes(converter.convert())


def nhwc(x_nchw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)).astype(np.float32)


def convert(onnx_path: Path, precisions: list[str], calib_nchw: np.ndarray, io_type: str) -> dict[str, bytes]:
    """{precision: tflite bytes}. `calib_nchw`: preprocessed (normalized) float32 images."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tf"
        calib = nhwc(calib_nchw)
        _onnx2tf(onnx_path, out, calib)
        result = {}
        for p in precisions:
            if p == "int8":
                result[p] = int8_from_saved_model(out, calib, io_type)
                continue
            f = out / f"{onnx_path.stem}_{OUTPUTS[p]}"
            if not f.is_file():
                raise ConversionFailed(f"onnx2tf did not write {f.name}")
            result[p] = f.read_bytes()
        shutil.rmtree(out, ignore_errors=True)
    return result


def saved_model(onnx_path: Path, out: Path, calib_nchw: np.ndarray) -> Path:
    """The TensorFlow SavedModel onnx2tf converts `onnx_path` through (what its int8 TFLite is quantized from),
    written to the directory `out`."""
    _onnx2tf(onnx_path, out, nhwc(calib_nchw[:1]))
    return out


def io_details(data: bytes) -> dict:
    """Input/output dtype, shape and quantization of a TFLite model, read by LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    inp, outp = it.get_input_details()[0], it.get_output_details()[0]

    def desc(d):
        scale, zp = d["quantization"]
        return {"name": d["name"], "dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape"]],
                "quantization": {"scale": float(scale), "zero_point": int(zp)} if scale else None}

    return {"input": desc(inp), "output": desc(outp)}


def write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
