"""Device budgets: parsed once, at the edge, into a typed and validated `Budget`."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .benchmark.latency_profile import load_profile
from .errors import BadInput, did_you_mean
from .precision import Precision
from .vocabulary import BUDGET_RUNTIMES as RUNTIMES
from .yamlio import read_yaml

ACCURACY_ON = ("task", "imagenet")
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_NUMBER = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKMGT]?)")

KEYS = {
    "name": "a short name for the device",
    "description": "free text",
    "flops_per_sec": "effective FLOP/s on the target (1 MAC = 2 FLOPs), e.g. 500M",
    "peak_flops_per_sec": "spec-sheet peak FLOP/s, used with efficiency",
    "efficiency": "fraction of peak really reached, 0 < e <= 1 (rule of thumb 0.1 to 0.2)",
    "storage_kb": "largest model file, KB",
    "runtime_kb": "interpreter code counted against storage_kb, KB (TFLite ~300, its core ~70)",
    "ram_kb": "largest peak activation memory, KB",
    "target_fps": "frames per second needed",
    "min_accuracy": "minimum top-1 as a fraction, 0.5 = 50%: on your task's held-out images after training, unless "
                    "accuracy_on says imagenet",
    "accuracy_on": "optional: task (default: min_accuracy is judged on your held-out images after training; the "
                   "ImageNet prior only ranks) or imagenet (min_accuracy is ImageNet top-1: select rejects on the "
                   "published prior)",
    "precision": "int8 | fp16 (float16) | fp32 (float32)",
    "num_classes": "optional: output classes; a build takes them from the data, select assumes 1000 without it",
    "runtime": "optional: tflite-micro for a microcontroller (int8 model input/output, only ops TFLite Micro "
               "has kernels for, RAM measured in TFLite Micro); leave out otherwise",
    "op_flops_per_sec": "optional effective FLOP/s per op class (standard, depthwise, pointwise, dense), "
                        "as written by `edgefit calibrate`",
    "latency_profile": "optional: a device latency profile written by `edgefit calibrate --profile`, relative to "
                       "the budget file; latency is predicted with it where it applies",
}
OP_CLASSES = ("standard", "depthwise", "pointwise", "dense")
REQUIRED = ("name", "storage_kb", "target_fps", "min_accuracy")


def parse_number(key: str, raw) -> float:
    """A finite number from YAML: 500000000, 500e6 (a string to YAML), 500M, 1.4G, 1_000."""
    if isinstance(raw, bool) or raw is None or isinstance(raw, (list, dict)):
        kind = "nothing" if raw is None else type(raw).__name__
        raise ValueError(f"expected a number, got {kind}; write e.g. 500e6, 500M or 1.4G")
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        m = _NUMBER.fullmatch(str(raw).strip().replace("_", "").replace(",", ""))
        if not m:
            raise ValueError(f"{raw!r} is not a number; write e.g. 500e6, 500M or 1.4G")
        value = float(m.group(1)) * _SI[m.group(2)]
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def _positive(key: str, raw) -> float:
    value = parse_number(key, raw)
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {raw!r}")
    return value


class Budget(BaseModel):
    """A device budget. `flops_per_sec` is always the effective throughput used for latency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    flops_per_sec: float
    peak_flops_per_sec: float | None = None
    efficiency: float | None = None
    storage_kb: float
    runtime_kb: float = 0.0
    ram_kb: float | None = None
    target_fps: float
    min_accuracy: float
    accuracy_on: Literal["task", "imagenet"] = "task"
    precision: Literal["int8", "float16", "float32"] = "int8"  # the budget's spelling (Precision.budget_name)
    num_classes: int = 1000
    op_flops_per_sec: dict | None = None
    runtime: Literal["tflite-micro"] | None = None
    latency_profile: str | None = None  # resolved against the budget file's folder by load_budget

    @field_validator("op_flops_per_sec", mode="before")
    @classmethod
    def _op_flops(cls, v, info):
        if not isinstance(v, dict) or not v:
            raise ValueError(f"expected a mapping of op class to FLOP/s ({', '.join(OP_CLASSES)})")
        out = {}
        for k, raw in v.items():
            if k not in OP_CLASSES:
                raise ValueError(f"unknown op class '{k}'{did_you_mean(k, OP_CLASSES)}; use {', '.join(OP_CLASSES)}")
            try:
                out[k] = _positive(k, raw)
            except ValueError as e:
                raise ValueError(f"{k}: {e}") from None
        return out

    @field_validator("latency_profile", mode="before")
    @classmethod
    def _profile_path(cls, v, info):
        if not isinstance(v, str) or not v.strip():
            raise ValueError("expected the path of a profile file written by `edgefit calibrate --profile`")
        return v

    @field_validator("name", "description", mode="before")
    @classmethod
    def _text(cls, v, info):
        if not isinstance(v, str) or (info.field_name == "name" and not v.strip()):
            raise ValueError("expected text" + (" that is not empty" if info.field_name == "name" else ""))
        return v

    @field_validator("flops_per_sec", "peak_flops_per_sec", "storage_kb", "ram_kb", "target_fps", mode="before")
    @classmethod
    def _positive_number(cls, v, info):
        return _positive(info.field_name, v)

    @field_validator("runtime_kb", mode="before")
    @classmethod
    def _non_negative(cls, v, info):
        value = parse_number(info.field_name, v)
        if value < 0:
            raise ValueError(f"must be 0 or more, got {v!r}")
        return value

    @field_validator("efficiency", mode="before")
    @classmethod
    def _efficiency(cls, v, info):
        value = parse_number(info.field_name, v)
        if not 0 < value <= 1:
            raise ValueError(f"must be in (0, 1], got {v!r}; real throughput is typically peak/5..10 "
                             "(efficiency 0.1 to 0.2)")
        return value

    @field_validator("min_accuracy", mode="before")
    @classmethod
    def _accuracy(cls, v, info):
        value = parse_number(info.field_name, v)
        if 1 < value <= 100:
            raise ValueError(f"{v!r} looks like a percentage, but it is a fraction: use {value / 100:.2f}")
        if not 0 <= value <= 1:
            raise ValueError(f"must be a fraction between 0 and 1, got {v!r}")
        return value

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, v, info):
        try:  # the CLI's words (fp16) and the budget's (float16) both; one canonical spelling is kept
            return Precision.parse(v).budget_name
        except BadInput as e:
            raise ValueError(str(e)) from None

    @field_validator("accuracy_on", mode="before")
    @classmethod
    def _accuracy_on(cls, v, info):
        if v not in ACCURACY_ON:
            raise ValueError(f"{v!r} is not one of {', '.join(ACCURACY_ON)}{did_you_mean(str(v), ACCURACY_ON)}")
        return v

    @property
    def accuracy_is_imagenet(self) -> bool:
        """Whether min_accuracy is ImageNet top-1 (judged on the published prior) rather than the task's."""
        return self.accuracy_on == "imagenet"

    @field_validator("runtime", mode="before")
    @classmethod
    def _runtime(cls, v, info):
        if v not in RUNTIMES:
            raise ValueError(f"{v!r} is not a runtime edgefit targets specially{did_you_mean(str(v), RUNTIMES)}; "
                             f"use {' or '.join(RUNTIMES)}, or leave the key out")
        return v

    @model_validator(mode="after")
    def _micro_is_int8(self):
        if self.runtime == "tflite-micro" and self.precision != "int8":
            raise ValueError(f"precision: TFLite Micro runs int8 models; set precision: int8 (got {self.precision})")
        return self

    @property
    def io(self) -> str:
        """The deployed model's input/output type: int8 on a microcontroller, else float."""
        return "int8" if self.runtime == "tflite-micro" else "float"

    @property
    def int8_for(self) -> str:
        """The runtime an int8 graph is shaped for (export/deploy_form.py): TFLite Micro, else LiteRT."""
        return self.runtime or "litert"

    @field_validator("num_classes", mode="before")
    @classmethod
    def _classes(cls, v, info):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected a whole number, got {v!r}")
        if v < 2:
            raise ValueError(f"must be 2 or more, got {v}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _throughput(cls, data):
        if not isinstance(data, dict):
            return data
        has_eff, has_peak = "flops_per_sec" in data, "peak_flops_per_sec" in data
        if has_eff and (has_peak or "efficiency" in data):
            raise ValueError("flops_per_sec: give either flops_per_sec, or peak_flops_per_sec with efficiency, "
                             "not both")
        if has_peak and "efficiency" not in data:
            raise ValueError("efficiency: missing; peak_flops_per_sec needs an efficiency, e.g. 0.15 "
                             "(real throughput is typically peak/5..10)")
        if "efficiency" in data and not has_peak:
            raise ValueError("peak_flops_per_sec: missing; efficiency applies to a peak_flops_per_sec")
        if not has_eff and not has_peak:
            raise ValueError("flops_per_sec: missing; add flops_per_sec (effective FLOP/s, e.g. 500M) "
                             "or peak_flops_per_sec with efficiency")
        if has_peak:
            data = dict(data)
            for key in ("peak_flops_per_sec", "efficiency"):
                try:
                    check = _positive if key == "peak_flops_per_sec" else cls._efficiency
                    data[key] = check(data[key], _Info(key)) if check is not _positive else check(key, data[key])
                except ValueError as e:
                    raise ValueError(f"{key}: {e}") from None
            data["flops_per_sec"] = data["peak_flops_per_sec"] * data["efficiency"]
        return data

    @property
    def max_macs_per_frame(self) -> float:
        return self.flops_per_sec / self.target_fps / 2

    @property
    def bytes_per_element(self) -> int:
        return Precision.parse(self.precision).bytes_per_element

    def with_num_classes(self, n: int) -> Budget:
        return self.model_copy(update={"num_classes": int(n)})


class _Info:
    def __init__(self, field_name: str):
        self.field_name = field_name


def budget_from_mapping(data, source: str = "budget") -> Budget:
    """Validate a mapping (as read from YAML) into a Budget; one-line BadInput on any problem."""
    if data is None:
        raise BadInput(f"{source}: the file is empty; a budget needs {', '.join(REQUIRED)} and flops_per_sec")
    if not isinstance(data, dict):
        raise BadInput(f"{source}: expected a mapping of keys (name: ..., storage_kb: ...), "
                       f"got a {type(data).__name__}")
    for key in data:
        if key not in KEYS:
            raise BadInput(f"{source}: unknown key '{key}'{did_you_mean(key, KEYS)}; "
                           f"known keys: {', '.join(KEYS)}")
    for key in REQUIRED:
        if key not in data:
            raise BadInput(f"{source}: missing key '{key}' ({KEYS[key]})")
    try:
        return Budget.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["loc"]:
            raise BadInput(f"{source}: {err['loc'][0]}: {msg}") from None
        raise BadInput(f"{source}: {msg}") from None


def load_budget(path: str | Path) -> Budget:
    """Read and validate a budget YAML file; a `latency_profile` is resolved against its folder and checked."""
    budget = budget_from_mapping(read_yaml(path, "budget"), source=str(path))
    if budget.latency_profile is None:
        return budget
    resolved = Path(path).parent / budget.latency_profile
    try:
        load_profile(resolved)
    except BadInput as e:
        raise BadInput(f"{path}: {e}") from None
    return budget.model_copy(update={"latency_profile": str(resolved)})
