import math

import pytest

from edgefit.budget import load_budget, parse_number
from edgefit.errors import BadInput

from .conftest import BUDGETS, run_cli

VALID = "name: t\nflops_per_sec: 1G\nstorage_kb: 100\ntarget_fps: 10\nmin_accuracy: 0.5\n"


@pytest.mark.parametrize("path", sorted(BUDGETS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_budget_is_valid_and_sourced(path):
    b = load_budget(path)
    assert b.flops_per_sec > 0 and b.storage_kb > 0
    text = path.read_text()
    assert text.count("#") >= 4, "each number in a shipped budget carries its source in a comment"


def test_at_least_five_profiles():
    names = {p.stem for p in BUDGETS.glob("*.yaml")}
    assert {"soc-x", "raspberry-pi-4", "android-midrange", "cortex-m7", "jetson-nano"} <= names


@pytest.mark.parametrize("raw,value", [
    (500000000, 5e8), ("500e6", 5e8), ("500M", 5e8), ("1.4G", 1.4e9), ("2k", 2000.0), ("1_000", 1000.0),
    (0.5, 0.5), (".5", 0.5),
])
def test_numbers(raw, value):
    assert parse_number("x", raw) == pytest.approx(value)


def test_peak_times_efficiency(write_budget):
    b = load_budget(write_budget(VALID.replace("flops_per_sec: 1G", "peak_flops_per_sec: 48G\nefficiency: 0.15")))
    assert b.flops_per_sec == pytest.approx(7.2e9)
    assert b.max_macs_per_frame == pytest.approx(7.2e9 / 10 / 2)


def test_defaults(write_budget):
    b = load_budget(write_budget(VALID))
    assert (b.precision, b.num_classes, b.runtime_kb, b.ram_kb) == ("int8", 1000, 0.0, None)
    assert (b.runtime, b.io) == (None, "float")
    assert load_budget(write_budget(VALID + "runtime: tflite-micro\n")).io == "int8"


ALIAS_BOMB = VALID + 'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n' \
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n'

BAD = {
    "empty": ("", "empty"),
    "not_yaml": ("name: [unclosed\nstorage_kb: 1\n", "not valid YAML"),
    "not_mapping": ("- a\n- b\n", "expected a mapping"),
    "missing_key": (VALID.replace("storage_kb: 100\n", ""), "missing key 'storage_kb'"),
    "missing_flops": (VALID.replace("flops_per_sec: 1G\n", ""), "flops_per_sec: missing"),
    "unknown_key": (VALID + "storage_kbb: 3\n", "did you mean storage_kb"),
    "wrong_type": (VALID.replace("target_fps: 10", "target_fps: fast"), "target_fps"),
    "list_type": (VALID.replace("target_fps: 10", "target_fps: [1, 2]"), "target_fps: expected a number"),
    "zero": (VALID.replace("storage_kb: 100", "storage_kb: 0"), "storage_kb: must be greater than 0"),
    "negative": (VALID.replace("target_fps: 10", "target_fps: -3"), "target_fps: must be greater than 0"),
    "nan": (VALID.replace("flops_per_sec: 1G", "flops_per_sec: .nan"), "flops_per_sec"),
    "inf": (VALID.replace("storage_kb: 100", "storage_kb: .inf"), "storage_kb"),
    "percent_accuracy": (VALID.replace("min_accuracy: 0.5", "min_accuracy: 50"), "use 0.50"),
    "accuracy_range": (VALID.replace("min_accuracy: 0.5", "min_accuracy: 250"), "min_accuracy"),
    "precision": (VALID + "precision: half\n", "precision: unknown precision 'half'"),
    "accuracy_on": (VALID + "accuracy_on: imagnet\n", "did you mean imagenet"),
    "efficiency_range": (VALID.replace("flops_per_sec: 1G", "peak_flops_per_sec: 1G\nefficiency: 1.5"),
                         "efficiency: must be in (0, 1]"),
    "efficiency_missing": (VALID.replace("flops_per_sec: 1G", "peak_flops_per_sec: 1G"), "efficiency: missing"),
    "both_throughputs": (VALID + "peak_flops_per_sec: 2G\nefficiency: 0.2\n", "not both"),
    "num_classes": (VALID + "num_classes: 1\n", "num_classes: must be 2 or more"),
    "num_classes_float": (VALID + "num_classes: 10.5\n", "num_classes: expected a whole number"),
    "bool_number": (VALID.replace("storage_kb: 100", "storage_kb: yes"), "storage_kb: expected a number"),
    "python_tag": (VALID + "x: !!python/object/apply:os.system ['echo pwned']\n", "python/object/apply:os.system"),
    "alias_bomb": (ALIAS_BOMB, "alias"),
    "duplicate_key": (VALID + "storage_kb: 200\n", "appears twice"),
    "empty_name": (VALID.replace("name: t", "name: ''"), "name"),
    "runtime": (VALID + "runtime: tflite-mirco\n", "did you mean tflite-micro"),
    "micro_float": (VALID + "runtime: tflite-micro\nprecision: float32\n", "TFLite Micro runs int8 models"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_budget_api(case, write_budget):
    text, expected = BAD[case]
    with pytest.raises(BadInput) as e:
        load_budget(write_budget(text))
    msg = str(e.value)
    assert expected in msg
    assert "\n" not in msg


@pytest.mark.parametrize("case", ["empty", "not_yaml", "unknown_key", "percent_accuracy", "python_tag",
                                  "alias_bomb", "nan", "precision"])
def test_bad_budget_cli_exit_2_one_line(case, write_budget, tmp_path):
    text, expected = BAD[case]
    p = write_budget(text)
    for cmd in (["budget", "validate", p], ["select", p]):
        r = run_cli(*cmd)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "pwned").exists()


def test_not_utf8(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BadInput, match="not UTF-8"):
        load_budget(p)


@pytest.mark.parametrize("kind", ["directory", "missing"])
def test_bad_paths(kind, tmp_path):
    p = tmp_path if kind == "directory" else tmp_path / "nope.yaml"
    r = run_cli("budget", "validate", p)
    assert r.returncode == 2
    assert ("is a directory" if kind == "directory" else "not found") in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_validate_prints_what_it_read():
    r = run_cli("budget", "validate", BUDGETS / "raspberry-pi-4.yaml", "--json")
    assert r.returncode == 0
    import json

    d = json.loads(r.stdout)
    assert math.isclose(d["flops_per_sec"], 48e9 * 0.15)
    assert d["max_macs_per_frame"] == pytest.approx(48e9 * 0.15 / 15 / 2)


@pytest.mark.parametrize("word, canonical", [("fp16", "float16"), ("float16", "float16"), ("fp32", "float32"),
                                             ("float32", "float32"), ("int8", "int8")])
def test_precision_takes_the_cli_words_too(word, canonical, write_budget):
    assert load_budget(write_budget(VALID + f"precision: {word}\n")).precision == canonical


def test_shipped_budgets_describe_devices_not_data_sets():
    """No shipped budget states num_classes (a build takes it from the data); validate says where it comes from."""
    for f in BUDGETS.glob("*.yaml"):
        assert "num_classes" not in load_budget(f).model_fields_set, f.name
    r = run_cli("budget", "validate", BUDGETS / "raspberry-pi-4.yaml")
    assert r.returncode == 0 and "classes      none stated: a build takes them from your data" in r.stdout
    assert "judged after training on your held-out images" in r.stdout
    soc = run_cli("budget", "validate", BUDGETS / "soc-x.yaml")
    assert "ImageNet top-1" in soc.stdout
