"""Streaming image sets: nothing decoded up front, unreadable files skipped where met and counted, the same
batches in memory or from loader workers, and the on-disk cache of resized images."""
import torch

from edgefit.data import pipeline
from edgefit.data.cache import ImageCache
from edgefit.data.folder import scan
from edgefit.data.pipeline import Augment, ImageSet, Preprocess, loader

PP = Preprocess(resolution=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def _batches(ds, seed=3, epoch=2):
    return [(x.clone(), y.clone()) for x, y in loader(ds, 7, True, seed, epoch)]


def test_nothing_decoded_up_front_and_unreadable_counted_where_met(colours, monkeypatch):
    split = scan(colours, seed=0)
    calls = []
    real = pipeline._decode
    monkeypatch.setattr(pipeline, "_decode", lambda p, pp: calls.append(p) or real(p, pp))
    sets = {n: ImageSet(split, n, PP, None) for n in ("train", "val")}
    assert calls == [] and sets["train"].skipped == {}
    n = sum(len(y) for name in sets for _, y in loader(sets[name], 8, False))
    listed = sum(len(split.files[name]) for name in sets)
    skipped = [f for name in sets for f in sets[name].skipped]
    assert sorted(p.rsplit("/", 1)[-1] for p in skipped) == ["broken.png", "notes.jpg"]
    assert n == listed - 2 and len(calls) == listed


def test_workers_and_memory_give_the_same_augmented_batches(colours):
    split = scan(colours, seed=0)
    aug = Augment(flip=True, jitter=0.3)
    kept = ImageSet(split, "train", PP, aug, keep_in_memory=True)
    kept.per_sample_seeds = True  # as under torchrun (a kept set in one process draws from the loop's RNG)
    streamed = ImageSet(split, "train", PP, aug, keep_in_memory=False)
    assert kept.workers == 0 and streamed.workers >= 1
    a, b = _batches(kept), _batches(streamed)
    assert len(a) == len(b)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], _batches(kept, epoch=3)[0][0])  # another epoch, other crops
    broken = [p for p, _ in split.files["train"] if "broken" in p or "notes" in p]
    assert broken and list(streamed.skipped) == list(kept.skipped) and set(kept.skipped) == set(broken)


def test_disk_cache_serves_resized_images_without_decoding(colours, tmp_path, monkeypatch):
    split = scan(colours, seed=0)
    cache = ImageCache(tmp_path / "cache")
    first = [x for x, _ in loader(ImageSet(split, "val", PP, None, keep_in_memory=False, cache=cache), 8, False)]
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == len(split.files["val"]) - sum("broken" in p or "notes" in p for p, _ in split.files["val"])

    def no_decode(path, pp):
        raise AssertionError(f"decoded {path} despite the cache")

    monkeypatch.setattr(pipeline, "_decode", no_decode)
    again = ImageSet(split, "val", PP, None, keep_in_memory=True, cache=cache)
    readable = [i for i, (p, _) in enumerate(split.files["val"]) if "broken" not in p and "notes" not in p]
    second = torch.stack([again[i][0] for i in readable])
    assert torch.equal(torch.cat(first), second)
    other = Preprocess(resolution=48, mean=PP.mean, std=PP.std)  # another resize misses the cache
    assert cache.get(colours / split.files["val"][readable[0]][0], other.resize, other.interpolation) is None
