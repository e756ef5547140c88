"""The `web` bundle: edgefit's preprocessing in JavaScript (Pillow's resample, bit for bit) and the page in a real
headless Chromium, served over HTTP from 127.0.0.1 with every other host unreachable."""
import base64
import fcntl
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from edgefit.deploy import web
from edgefit.deploy.bundle import BundleInputs, read_manifest
from edgefit.deploy.write import write_bundles
from edgefit.device import classify
from edgefit.errors import BadInput

from .conftest import ROOT

NODE = shutil.which("node")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")  # no host but ours: a CDN would fail
need_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: apt-get update && "
                                   "apt-get install -y chromium (Debian), then rerun")

RESAMPLE_JS = """
import {resample} from MODULE;
import fs from 'fs';
const [inp, meta, out] = process.argv.slice(1);
const blob = fs.readFileSync(inp), cases = JSON.parse(fs.readFileSync(meta, 'utf8'));
fs.writeFileSync(out, Buffer.concat(cases.map(([w, h, ow, oh, off, f]) =>
  Buffer.from(resample(blob.subarray(off, off + w * h * 3), w, h, ow, oh, f)))));
"""


def test_resample_is_pillows_bit_for_bit(tmp_path):
    """The JavaScript port against Pillow's Image.resize on random RGB images: up and down, odd sizes, one axis
    only, tall images whose vertical pass runs first, both filters."""
    if NODE is None:
        pytest.skip("node is not installed: the JavaScript resample cannot run here")
    g = np.random.default_rng(7)
    cases, arrays, blob = [], [], bytearray()
    for i in range(240):
        w, h = (int(v) for v in g.integers(1, 90, 2))
        ow, oh = [(int(g.integers(1, 200)), int(g.integers(1, 200))),  # anything
                  (max(1, w // int(g.integers(2, 9))), max(1, h // int(g.integers(2, 9)))),  # shrink
                  (w, int(g.integers(1, 200))),  # one axis
                  (w + int(g.integers(0, 3)), max(1, h // 7))][i % 4]  # tall shrink: vertical pass first
        if i % 4 == 3:
            h = int(g.integers(100, 400))
            oh = max(1, h // int(g.integers(3, 20)))
        a = g.integers(0, 256, (h, w, 3), dtype=np.uint8)
        f = ("bilinear", "bicubic")[i % 2]
        cases.append([w, h, ow, oh, len(blob), f])
        arrays.append(a)
        blob += a.tobytes()
    (tmp_path / "in.bin").write_bytes(blob)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    js = RESAMPLE_JS.replace("MODULE", json.dumps((web.ASSETS / "edgefit.mjs").as_uri()))
    r = subprocess.run([NODE, "--input-type=module", "-e", js, "--", str(tmp_path / "in.bin"),
                        str(tmp_path / "cases.json"), str(tmp_path / "out.bin")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out, off = (tmp_path / "out.bin").read_bytes(), 0
    filters = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
    assert sum(ow * oh * 3 for _, _, ow, oh, _, _ in cases) == len(out)
    for (w, h, ow, oh, _, f), a in zip(cases, arrays, strict=True):
        want = np.asarray(Image.fromarray(a).resize((ow, oh), filters[f]))
        got = np.frombuffer(out, np.uint8, ow * oh * 3, off).reshape(oh, ow, 3)
        off += ow * oh * 3
        assert np.array_equal(got, want), (f, (w, h), (ow, oh), int(np.abs(got.astype(int) - want).max()))


def test_the_pinned_onnxruntime_web_is_the_one_edgefit_names():
    pkg = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert pkg["dependencies"]["onnxruntime-web"] == web.ORT_WEB_VERSION
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == web.ORT_WEB_VERSION


def test_missing_runtime_files_are_one_line_naming_what_to_run(monkeypatch, tmp_path, exported_art):
    monkeypatch.setenv(web.ENV, str(tmp_path))
    why = web.unavailable()
    assert why and web.ENV in why and "ort.wasm.min.mjs" in why and "npm install onnxruntime-web@" in why
    with pytest.raises(BadInput, match="--target web is not available here"):
        write_bundles(exported_art[0], "web", out=tmp_path / "out")
    assert not (tmp_path / "out" / "web").exists()


@pytest.fixture(scope="module")
def bundle(exported_art, tmp_path_factory):
    if why := web.unavailable():
        pytest.skip(f"the web target is unavailable here: {why}")
    (b,) = write_bundles(exported_art[0], "web", out=tmp_path_factory.mktemp("webdeploy"))
    return exported_art[0], b


def test_bundle_holds_the_model_the_page_and_the_vendored_runtime(bundle):
    folder, b = bundle
    d = Path(b.directory)
    assert b.artifact == "model.onnx"  # fp32 is preferred for a browser
    assert sorted(b.files) == sorted(["README.md", "edgefit.json", "edgefit.mjs", "index.html", "labels.txt",
                                      "model.onnx", *web.ORT_FILES])
    assert (d / "model.onnx").read_bytes() == (folder / "model.onnx").read_bytes()
    dist, _ = web.ort_dist()
    for name in web.ORT_FILES:
        assert (d / name).read_bytes() == (dist / name).read_bytes(), name
    assert b.facts["onnxruntime_web"] == web.ORT_WEB_VERSION and b.facts["precision"] == "fp32"
    assert b.facts["bundle_bytes"] == sum((d / f).stat().st_size for f in b.files)
    manifest = json.loads((d / "edgefit.json").read_text())
    assert manifest["deploy"]["model"] == "model.onnx" and len(manifest["artifacts"]) == 1
    assert (d / "labels.txt").read_text().split() == manifest["labels"]
    for page in ("index.html", "edgefit.mjs"):  # nothing from another site
        text = (d / page).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, page
    readme = (d / "README.md").read_text()
    assert "python3 -m http.server" in readme and "file://" in readme and "top-1 agreement" in b.parity


def test_web_refuses_a_preprocessing_it_does_not_port(exported_art, tmp_path):
    folder = exported_art[0]
    m = read_manifest(folder)
    m["preprocess"] = {**m["preprocess"], "interpolation": "lanczos"}
    art = next(a for a in m["artifacts"] if a["file"] == "model.onnx")
    with pytest.raises(BadInput, match="bilinear or bicubic"):
        web.write(BundleInputs(folder, m, art, None), tmp_path)


class Chrome:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on fd 3,
    replies on fd 4, each a JSON message ending in NUL)."""

    def __init__(self, user_data: Path, log: Path):
        cmd_r, self.cmd_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(rep_w, fcntl.F_DUPFD, 10)
        for fd in (cmd_r, rep_w):
            os.close(fd)
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-', "chromium", CHROMIUM, *FLAGS,
             "--remote-debugging-pipe", f"--user-data-dir={user_data}", "about:blank"],
            pass_fds=(a, b), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        for fd in (a, b):
            os.close(fd)
        self.buf, self.last = b"", 0
        target = next(t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]

    def send(self, method, timeout=60, session=None, **params):
        self.last += 1
        msg = {"id": self.last, "method": method, "params": params, **({"sessionId": session} if session else {})}
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.cmd_w, data):]
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self.buf:
                ready, _, _ = select.select([self.rep_r], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(self.rep_r, 1 << 20) if ready else None
                if not chunk:
                    raise RuntimeError(f"Chromium did not answer {method} ({'timeout' if ready == [] else 'exited'})")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self.last:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str, timeout=60):
        r = self.send("Runtime.evaluate", timeout=timeout, session=self.session, expression=expression,
                      awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page error: {r['exceptionDetails'].get('exception', r['exceptionDetails'])}")
        return r["result"].get("value")

    def open(self, url: str, timeout=120) -> str:
        """Navigate to `url` and wait for the page to mark <pre id="results"> done (or failed): its status."""
        self.send("Page.navigate", session=self.session, url=url)
        deadline = time.monotonic() + timeout
        probe = (f"location.href === {json.dumps(url)} && document.readyState === 'complete' && "
                 "(document.getElementById('results') || {dataset: {}}).dataset.status || null")
        while time.monotonic() < deadline:
            status = self.evaluate(probe)
            if status:
                return status
            time.sleep(0.1)
        raise TimeoutError(f"{url}: no results after {timeout} s")

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
            self.proc.wait(timeout=10)
        except (RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for fd in (self.cmd_w, self.rep_r):
            os.close(fd)
        self.log.close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        QuietHandler.requested.append(self.path)
        super().do_GET()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A static server on 127.0.0.1 for a folder, and one Chromium: (root folder, base URL, Chrome)."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: apt-get update && apt-get install -y chromium (Debian), then rerun")
    root = tmp_path_factory.mktemp("site")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tmp = tmp_path_factory.mktemp("chromium")
    chrome = Chrome(tmp / "profile", tmp / "chromium.log")
    yield root, f"http://127.0.0.1:{server.server_address[1]}", chrome
    chrome.close()
    server.shutdown()


def onnxruntime_probs(model: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    z = np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(len(x))])
    z = z.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


@need_chromium
@pytest.mark.parametrize("artifact", ["model.onnx", "model_int8.onnx"])
def test_page_classifies_the_test_split_as_onnxruntime_does(bundle, site, trained_run, exported_art, artifact):
    """?img=... on the run's test split: the page's labels are onnxruntime-Python's on edgefit's own inputs, the
    scores agree within 1e-4, and nothing but the bundle's files and the images was requested."""
    from edgefit import checkpoint
    from edgefit.data.images import split_images

    folder, manifest, _ = exported_art
    root, base, chrome = site
    page = root / artifact.replace(".", "_")
    if artifact == "model.onnx":
        shutil.copytree(bundle[1].directory, page)
    else:  # the int8 fallback, written by the same writer
        page.mkdir()
        art = next(a for a in manifest["artifacts"] if a["file"] == artifact)
        web.write(BundleInputs(folder, read_manifest(folder), art, None), page)
    test = split_images(checkpoint.open_source(trained_run), "test", None, limit=20)
    assert len(test.paths) == 20
    (root / "img").mkdir(exist_ok=True)
    names = []
    for i, rel in enumerate(test.paths):
        names.append(f"{i:02d}{Path(rel).suffix}")
        shutil.copyfile(Path(test.root) / rel, root / "img" / names[-1])
    QuietHandler.requested.clear()
    t = time.perf_counter()
    url = f"{base}/{page.name}/index.html?img=" + ",".join(f"../img/{n}" for n in names)
    status = chrome.open(url)
    got = json.loads(chrome.evaluate("document.getElementById('results').textContent"))
    seconds = time.perf_counter() - t
    assert status == "done", got
    p = onnxruntime_probs(page / "model.onnx", test.x.numpy())
    labels = manifest["labels"]
    assert [r["img"] for r in got] == [f"../img/{n}" for n in names]
    assert [r["label"] for r in got] == [labels[i] for i in p.argmax(1)]
    diff = max(abs(r["score"] - float(row.max())) for r, row in zip(got, p, strict=True))
    print(f"{artifact}: {len(names)} images in Chromium in {seconds:.1f} s, labels equal, "
          f"max score difference {diff:.2e}")
    # float kernels agree to rounding; int8 kernels differ by build (onnxruntime-web's wasm vs x86's VNNI paths
    # round requantization differently), so the int8 page is held to the same labels and close scores
    assert diff <= (1e-4 if artifact == "model.onnx" else 0.05)
    served = {u.split("?")[0] for u in QuietHandler.requested}
    assert served <= {f"/{page.name}/{f}" for f in os.listdir(page)} | {f"/img/{n}" for n in names}, served



@need_chromium
def test_a_picked_file_is_classified_on_the_page(bundle, site, trained_run, exported_art):
    """A person picks an image file (the file input the drop zone opens): the page shows the label
    onnxruntime-Python gives and its score as a percentage."""
    from edgefit import checkpoint
    from edgefit.data.images import split_images

    root, base, chrome = site
    shutil.copytree(bundle[1].directory, root / "pick")
    test = split_images(checkpoint.open_source(trained_run), "test", None, limit=1)
    p = onnxruntime_probs(root / "pick" / "model.onnx", test.x.numpy())[0]
    assert chrome.open(f"{base}/pick/index.html") == "done"
    doc = chrome.send("DOM.getDocument", session=chrome.session)["root"]["nodeId"]
    node = chrome.send("DOM.querySelector", session=chrome.session, nodeId=doc, selector="#pick")["nodeId"]
    chrome.send("DOM.setFileInputFiles", session=chrome.session, nodeId=node,
                files=[str(Path(test.root) / test.paths[0])])
    deadline, answer = time.monotonic() + 60, ""
    while time.monotonic() < deadline and "%" not in answer:
        time.sleep(0.1)
        answer = chrome.evaluate("document.getElementById('answer').textContent")
    assert answer == f"{exported_art[1]['labels'][int(p.argmax())]} ({100 * p.max():.1f}%)", answer

def _images(root: Path) -> list[str]:
    """PNGs of every kind edgefit's decoder handles: odd sizes up and down, a tall one (vertical pass first),
    every (value, alpha) pair, grayscale, gray+alpha, palette with and without transparency, tRNS on gray and
    RGB (Pillow ignores it), a gamma chunk (not applied), 16-bit gray and RGB, smaller than the crop; and two JPEGs
    (Chromium's decoder and Pillow's give the same pixels): progressive, and baseline EXIF-rotated."""
    g = np.random.default_rng(3)
    rgb = lambda h, w: Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8))  # noqa: E731
    x = np.arange(256, dtype=np.uint8)
    every = np.stack(np.broadcast_arrays(x[None, :], 255 - x[None, :], (x * 7)[None, :], x[:, None]), -1)
    gamma = PngImagePlugin.PngInfo()
    gamma.add(b"gAMA", (100000).to_bytes(4, "big"))  # gamma 1.0: a colour-managed decoder would change pixels
    y, x = np.mgrid[0:90, 0:130]
    smooth = np.stack([x * 255 / 130, y * 255 / 90, 128 + 100 * np.sin(x / 9) * np.cos(y / 7)], -1).astype(np.uint8)
    rotated = Image.new("RGB", (1, 1)).getexif()
    rotated[274] = 6  # a phone photo: shown rotated 90 degrees
    kinds = {
        "wide.png": (rgb(97, 150), {}), "tall.png": (rgb(301, 123), {}), "small.png": (rgb(20, 31), {}),
        "alpha.png": (Image.fromarray(every, "RGBA"), {}),
        "gray.png": (Image.fromarray(g.integers(0, 256, (50, 61), dtype=np.uint8), "L"), {}),
        "gray_alpha.png": (Image.fromarray(g.integers(0, 256, (40, 70, 2), dtype=np.uint8), "LA"), {}),
        "palette.png": (rgb(60, 45).convert("P"), {}),
        "palette_trns.png": (rgb(60, 45).convert("P"), {"transparency": 3}),
        "gray_trns.png": (Image.fromarray(g.integers(0, 4, (33, 47), dtype=np.uint8) * 60, "L"),
                          {"transparency": 60}),
        "rgb_trns.png": (Image.fromarray(g.integers(0, 2, (41, 37, 3), dtype=np.uint8) * 200),
                         {"transparency": (0, 200, 0)}),
        "gamma.png": (rgb(45, 52), {"pnginfo": gamma}),
        "gray16.png": (Image.fromarray(g.integers(0, 65536, (40, 70), dtype=np.uint16)), {}),
        "progressive.jpg": (Image.fromarray(smooth), {"quality": 80, "progressive": True}),
        "phone.jpg": (Image.fromarray(smooth), {"quality": 90, "exif": rotated}),
    }
    for name, (img, kw) in kinds.items():
        img.save(root / name, **kw)
    deep = g.integers(0, 65536, (30, 43, 3), dtype=np.uint16)
    _save_rgb16(root / "deep_rgb.png", deep)
    return [*kinds, "deep_rgb.png"]


def _save_rgb16(path: Path, a: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    import struct
    import zlib

    h, w, _ = a.shape
    raw = b"".join(b"\0" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@need_chromium
def test_page_preprocessing_is_edgefits_bit_for_bit(bundle, site):
    """In Chromium, edgefit.mjs turns every kind of PNG (and two JPEGs) into exactly the float32 input edgefit's
    Python computes (device/classify.py), for the bundle's preprocessing and for the other filter at another size."""
    root, base, chrome = site
    d = root / "pp"
    shutil.copytree(bundle[1].directory, d)
    names = _images(d)
    pp = json.loads((d / "edgefit.json").read_text())["preprocess"]
    other = {**pp, "interpolation": {"bilinear": "bicubic", "bicubic": "bilinear"}[pp["interpolation"]],
             "resolution": 64, "resize": 73}
    assert chrome.open(f"{base}/pp/index.html") == "done"
    js = """(async () => {
      const m = await import('./edgefit.mjs');
      const out = {};
      for (const name of NAMES) for (const [i, pp] of PREPROCESS.entries()) {
        const x = await m.preprocess(await (await fetch(name)).blob(), pp);
        const u8 = new Uint8Array(x.buffer);
        let s = '';
        for (let j = 0; j < u8.length; j += 8192) s += String.fromCharCode(...u8.subarray(j, j + 8192));
        out[name + ':' + i] = btoa(s);
      }
      return out;
    })()""".replace("NAMES", json.dumps(names)).replace("PREPROCESS", json.dumps([pp, other]))
    got = chrome.evaluate(js, timeout=120)
    for name in names:
        for i, p in enumerate((pp, other)):
            want = classify.preprocess(d / name, p).transpose(2, 0, 1)
            x = np.frombuffer(base64.b64decode(got[f"{name}:{i}"]), np.float32).reshape(want.shape)
            assert np.array_equal(x, want), (name, p["interpolation"], float(np.abs(x - want).max()))
