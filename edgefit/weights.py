"""Model construction with weights: ImageNet through timm's own loading and the Hugging Face cache,
a local state-dict file, or none.

Offline without a cached file, `--weights imagenet` fails within seconds, naming the cache path to
place the file at and the alternatives; it never hangs on the network.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import zoo
from .errors import BadInput

# huggingface_hub reads these when first imported; keep a missing network from stalling a run.
os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _hub_id(variant: zoo.Variant) -> str:
    import timm

    cfg = timm.models.get_pretrained_cfg(variant.weights)
    if cfg is None or not cfg.hf_hub_id:
        raise BadInput(f"timm has no hub location for {variant.weights}")
    return cfg.hf_hub_id


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_imagenet_file(variant: zoo.Variant) -> str | None:
    """The cached pretrained file of `variant`, or None (no network access)."""
    from huggingface_hub import try_to_load_from_cache

    repo = _hub_id(variant)
    for fn in WEIGHT_FILES:
        path = try_to_load_from_cache(repo, fn)
        if isinstance(path, str) and Path(path).is_file():
            return path
    return None


def fetch_imagenet_file(variant: zoo.Variant) -> str:
    """Cached file, else a download through huggingface_hub with short timeouts, else a clear error."""
    if variant.weights is None:
        with_weights = sorted({v.name for v in zoo.variants() if v.weights and v.family == variant.family})
        hint = f" (e.g. {with_weights[0]})" if with_weights else ""
        raise BadInput(f"no ImageNet weights exist for {variant.name}; use --weights none to train from "
                       f"scratch, --weights PATH, or a variant with weights{hint} (`edgefit zoo` lists them)")
    found = cached_imagenet_file(variant)
    if found:
        return found
    repo = _hub_id(variant)
    try:
        _probe_hub()
        from huggingface_hub import hf_hub_download

        return hf_hub_download(repo, WEIGHT_FILES[0])
    except Exception as e:  # noqa: BLE001 - offline, DNS, HTTP errors all mean "not available"
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        target = hub_cache_dir() / f"models--{repo.replace('/', '--')}"
        raise BadInput(
            f"ImageNet weights for {variant.name} ({repo}) are not cached and could not be downloaded "
            f"({reason}); place them in the Hugging Face cache at {target} (on a connected machine: "
            f"`huggingface-cli download {repo}`, then copy that folder), or use --weights PATH "
            "(a local .safetensors or .pt state dict) or --weights none") from None


def _probe_hub(timeout: float = 3.0) -> None:
    """One quick connection to the hub before huggingface_hub's retrying download: offline fails now."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ConnectionError("HF_HUB_OFFLINE is set")
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"cannot reach {url.hostname}: {e.strerror or e}") from None


def _read_state_dict(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise BadInput(f"weights file not found: {path}; --weights takes imagenet, none or a file path")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{path}: not a readable state dict ({str(e).splitlines()[0][:120]}); "
                       "give a .safetensors file or a torch state dict saved with torch.save") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]  # an edgefit or common training checkpoint
    if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
        raise BadInput(f"{path}: expected a mapping of parameter names to tensors")
    return sd


def load_matching(model, sd: dict, source: str) -> dict:
    """Load every tensor whose name and shape match; the classifier may differ (new classes)."""
    own = model.state_dict()
    classifier = {k for k in own if k.startswith(_classifier_prefix(model))}
    usable = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    missing = [k for k in own if k not in usable and k not in classifier and not k.endswith("num_batches_tracked")]
    if missing:
        raise BadInput(f"{source} does not match this architecture: {len(missing)} tensors missing or of "
                       f"another shape (first: {missing[0]}); was it saved from another variant?")
    model.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "new": sorted(k for k in own if k not in usable)}


def _classifier_prefix(model) -> str:
    name = getattr(model, "pretrained_cfg", {}).get("classifier") or "classifier"
    return name


def fresh_classifier(model) -> None:
    """A new classifier starts small (normal, std 0.01; zero bias), so that the first steps do not
    start from large logits: timm's initialisation scales with 1/sqrt(classes), far too wide for few."""
    import torch

    head = model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        torch.nn.init.normal_(head.weight, std=0.01)
        if head.bias is not None:
            torch.nn.init.zeros_(head.bias)


def build_with_weights(variant: zoo.Variant, num_classes: int, weights: str):
    """(model, description of the weights). `weights`: 'imagenet', 'none' or a file path."""
    if weights == "none":
        model = zoo.build_model(variant, num_classes)
        fresh_classifier(model)
        return model, {"source": "none"}
    if weights == "imagenet":
        path = fetch_imagenet_file(variant)
        import timm

        model = timm.create_model(variant.weights, pretrained=True, num_classes=num_classes,
                                  pretrained_cfg_overlay={"file": path})
        fresh_classifier(model)
        return model, {"source": "imagenet", "timm_tag": variant.weights, "file": path}
    path = Path(weights)
    sd = _read_state_dict(path)
    model = zoo.build_model(variant, num_classes)
    info = load_matching(model, sd, str(path))
    if any(k.startswith(_classifier_prefix(model)) for k in info["new"]):
        fresh_classifier(model)
    return model, {"source": "file", "file": str(path.resolve()), "new_tensors": info["new"]}


def default_weights(variant: zoo.Variant) -> str:
    return "imagenet" if variant.weights else "none"
