"""The device in the loop: a probe folder timed by probe.py with nothing but numpy and the runtime, its results
judged by `bench --on-target` and fitted by `calibrate --from`."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgefit.device import probe as device_probe

from .conftest import BLOCKER, HEAVY, run_cli, run_device_script

BUDGET = "name: pi\nflops_per_sec: 2G\nstorage_kb: 100000\ntarget_fps: 10\nmin_accuracy: 0.1\n"
SMALL = "mobilenet_v3_small_minimal"


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def probed(exported_art, tmp_path_factory):
    """The session's TFLite artifacts packed for LiteRT and timed by probe.py with the heavy stack blocked."""
    art, _, _ = exported_art
    d = tmp_path_factory.mktemp("probe")
    r = run_cli("probe", art, "--out", d / "p", "--runtime", "litert", "--threads", "2", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    folder = json.loads(r.stdout)
    res = d / "results.json"
    run = run_device_script(d / "p" / "probe.py", "--out", res)
    assert run.returncode == 0, run.stderr[-3000:]
    return art, d / "p", folder, res, run


def test_probe_runs_with_numpy_and_the_runtime_only(probed):
    art, folder, packed, res, run = probed
    r = json.loads(res.read_text())
    assert r["schema"] == "edgefit-probe-results/1" and r["complete"] and r["threads"] == 2
    assert r["runtime"]["name"] == "ai-edge-litert" and r["runtime"]["version"] and r["runtime"]["kind"] == "litert"
    assert r["device"]["cpu"] and r["device"]["cores"] >= 1 and r["device"]["python"]
    files = {a["name"]: a for a in r["items"]}
    assert set(files) == {p.name for p in art.glob("*.tflite")} == {"model.tflite", "model_fp16.tflite",
                                                                     "model_int8.tflite"}
    for name, item in files.items():
        assert item["sha256"] == _sha(art / name)
        assert item["runs"] >= 20 and 0 < item["min_ms"] <= item["p50_ms"] and len(item["round_p50_ms"]) == 3
        assert len(item["samples_ms"]) == item["runs"] and item["spread"] >= 0 and item["load_ms"] > 0
        # the same runtime on the same host: the device's outputs are the host's
        assert item["agreement"]["top1_agreement"] == 1.0 and item["agreement"]["max_rel_error"] < 1e-6
        assert "validation images" in item["agreement"]["inputs"]
    assert "about" in run.stderr and "[1/1] artifacts" in run.stderr  # progress with an ETA
    assert packed["size_bytes"] == sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert (folder / "README.md").is_file()
    assert (folder / "probe.py").read_bytes() == Path(device_probe.__file__).read_bytes()  # verbatim


def test_bench_on_target_judges_target_fps_by_the_device(probed, write_budget, tmp_path):
    art, _, _, res, _ = probed
    budget = write_budget(BUDGET)
    item = next(i for i in json.loads(res.read_text())["items"] if i["name"] == "model_int8.tflite")
    b = run_cli("bench", art / "model_int8.tflite", "--budget", budget, "--on-target", res, "--runtime", "litert",
                "--threads", "2", "--json", "--min-seconds", "0.2")
    assert b.returncode in (0, 1), b.stderr[-2000:]
    report = json.loads(b.stdout)
    line = next(ln for ln in report["budget"]["lines"] if ln["constraint"] == "target_fps")
    assert line["measured"] and line["note"].startswith("measured on the target: ")
    assert line["value"] == pytest.approx(1000 / item["p50_ms"], rel=1e-3)
    assert line["predicted"] is not None and "predicted on the target" in line["predicted_note"]
    assert report["results"][0]["on_target"]["p50_ms"] == item["p50_ms"]
    plain = run_cli("bench", art / "model_int8.tflite", "--budget", budget, "--runtime", "litert", "--json",
                    "--min-seconds", "0.2")
    line = next(ln for ln in json.loads(plain.stdout)["budget"]["lines"] if ln["constraint"] == "target_fps")
    assert not line["measured"] and line["note"].startswith("predicted on the target: ")


@pytest.mark.parametrize("edit, expected", [
    (lambda d: {**d, "items": [{**i, "sha256": "0" * 64} for i in d["items"]]}, "no sha256 matches"),
    (lambda d: json.dumps(d)[:500], "not readable JSON"),
    (lambda d: {"schema": "edgefit-bench/1", "results": []}, "not a probe results file"),
])
def test_bad_results_are_one_line_and_write_nothing(probed, write_budget, tmp_path, edit, expected):
    art, _, _, res, _ = probed
    bad = edit(json.loads(res.read_text()))
    (tmp_path / "r.json").write_text(bad if isinstance(bad, str) else json.dumps(bad))
    b = run_cli("bench", art / "model_int8.tflite", "--budget", write_budget(BUDGET), "--on-target",
                tmp_path / "r.json", "--json", tmp_path / "out.json")
    assert b.returncode == 2 and expected in b.stderr and "Traceback" not in b.stderr, b.stderr[-1500:]
    assert len(b.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.json").exists()


def test_probe_names_the_package_when_the_runtime_is_missing(probed, tmp_path):
    _, folder, _, _, _ = probed
    r = run_device_script(folder / "probe.py", "--out", tmp_path / "r.json",
                          blocked=(*HEAVY, "ai_edge_litert", "tflite_runtime"))
    assert r.returncode == 2
    assert "pip install ai-edge-litert" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.json").exists()


def test_quick_times_a_fifth_and_is_not_mixed_with_a_full_run(probed, tmp_path):
    _, folder, _, res, _ = probed
    quick = tmp_path / "quick.json"
    r = run_device_script(folder / "probe.py", "--out", quick, "--quick")
    assert r.returncode == 0, r.stderr[-2000:]
    full, fast = json.loads(res.read_text())["protocol"], json.loads(quick.read_text())["protocol"]
    assert fast["artifact_seconds"] == pytest.approx(full["artifact_seconds"] * device_probe.QUICK)
    assert fast["rounds"] == full["rounds"] and fast["min_runs"] == full["min_runs"]
    again = run_device_script(folder / "probe.py", "--out", quick)  # continuing it with the full protocol: refused
    assert again.returncode == 2 and "protocol" in again.stderr and "Traceback" not in again.stderr


def test_a_small_set_too_few_to_fit_is_refused_before_anything_is_written(tmp_path):
    r = run_cli("probe", "--out", tmp_path / "p", "--runtime", "litert", "--calibration-set", "small",
                "--precision", "fp32")
    assert r.returncode == 2 and "a profile is fitted on 6 or more" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p").exists()


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """An onnxruntime calibration set of 6 zoo networks (one small family held out), timed by probe.py, which is
    killed after its first group and run again to finish."""
    d = tmp_path_factory.mktemp("cal")
    held = f"{SMALL}_1.0_96"
    r = run_cli("probe", "--out", d / "p", "--runtime", "onnxruntime", "--calibration-set", "small",
                "--calibration-networks", "6", "--exclude-variants", held, "--threads", "1", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    res = d / "results.json"
    proc = subprocess.Popen([sys.executable, "-c", BLOCKER, ",".join(HEAVY), str(d / "p" / "probe.py"),
                             "--out", str(res)], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (res.is_file() and json.loads(res.read_text())["groups_done"]):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = json.loads(res.read_text())
    assert 1 <= len(first["groups_done"]) < 6 and not first["complete"]
    again = run_device_script(d / "p" / "probe.py", "--out", res)
    assert again.returncode == 0, again.stderr[-2000:]
    return d, held, first, json.loads(res.read_text())


def test_a_killed_probe_keeps_what_it_measured_and_continues(calibration):
    _, _, first, final = calibration
    assert final["complete"] and len(final["groups_done"]) == 6
    kept = {i["id"]: i["p50_ms"] for i in first["items"]}
    assert {i["id"]: i["p50_ms"] for i in final["items"] if i["id"] in kept} == kept  # not measured again
    nets = [i for i in final["items"] if i["kind"] == "network"]
    assert len(nets) == 6 and all(len(n["kernels"]) > 10 and n["kernels"][0]["us"] > 0 for n in nets)


@pytest.fixture(scope="module")
def device_profile(calibration):
    d, held, _, _ = calibration
    r = run_cli("calibrate", "--from", d / "results.json", "--profile", d / "device.json")
    assert r.returncode == 0, r.stderr[-2000:]
    return d / "device.json", held


def test_calibrate_from_the_device_gives_a_profile_select_uses(device_profile, write_budget):
    path, held = device_profile
    p = json.loads(path.read_text())
    assert p["runtime"] == "onnxruntime" and p["threads"] == 1 and len(p["networks"]) == 6 and held not in p["networks"]
    assert p["measured_by"].startswith("probe.py") and p["device"]["cpu"]
    budget = write_budget(BUDGET + "precision: float32\nlatency_profile: device.json\n", "b.yaml")
    (budget.parent / "device.json").write_text(path.read_text())
    s = run_cli("select", budget, "--family", SMALL, "--json")
    assert s.returncode in (0, 1), s.stderr[-2000:]
    cand = next(c for c in json.loads(s.stdout)["feasible"] if c["name"] == held)
    assert cand["latency_method"].startswith("latency profile device.json (onnxruntime fp32, 1 thread(s))")


def test_calibrate_from_refuses_what_is_not_a_calibration(probed, tmp_path):
    _, _, _, res, _ = probed
    r = run_cli("calibrate", "--from", res, "--profile", tmp_path / "p.json")
    assert r.returncode == 2 and "0 calibration networks" in r.stderr and not (tmp_path / "p.json").exists()


def test_results_of_another_runtime_than_the_profile_are_refused(probed, device_profile, write_budget):
    art, _, _, res, _ = probed
    budget = write_budget(BUDGET + f"latency_profile: {device_profile[0]}\n", "ort.yaml")
    b = run_cli("bench", art / "model_int8.tflite", "--budget", budget, "--on-target", res)
    assert b.returncode == 2 and "measured with litert" in b.stderr and "Traceback" not in b.stderr


def test_a_whole_model_is_timed_with_its_input_set_and_a_cut_kernel_without(probed):
    """bench times LiteRT as set_tensor + invoke; the probe's whole models must be timed the same way (a probe
    that only invoked measured 3-4% faster than bench), and its cut-out kernels only invoke (in their network the
    input is already in place)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    art, _, _, res, _ = probed
    path = next(Path(art).glob("*.tflite"))
    for feed in (True, False):
        m = device_probe.TfliteModel(Interpreter, path, 1, feed)
        d = m.inputs[0]
        m.it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        m.run()
        seeded = m.fed_inputs[0][1]
        assert np.array_equal(m.it.get_tensor(d["index"]), seeded) is feed and seeded.any()
    assert json.loads(res.read_text())["protocol"]["feed"] == "inputs set every run"


def test_results_of_a_probe_that_did_not_set_the_input_are_refused(probed, tmp_path):
    _, _, _, res, _ = probed
    old = json.loads(res.read_text())
    del old["protocol"]["feed"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    r = run_cli("calibrate", "--from", tmp_path / "old.json", "--profile", tmp_path / "p.json")
    assert r.returncode == 2 and "older probe.py" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "p.json").exists()
