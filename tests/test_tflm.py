"""Every zoo family's int8 export runs in TensorFlow Lite Micro, and select's RAM estimate is its arena."""
import copy

import pytest
import torch

from edgefit import checkpoint, zoo
from edgefit.costs import peak_ram_bytes
from edgefit.data.pipeline import Preprocess
from edgefit.export import export
from edgefit.export.deploy_form import deploy_form
from edgefit.tflm import measure_arena
from edgefit.trace import measure_variant

from .conftest import make_colours

# one variant per family, its lowest resolution and width (registry-driven: a new family is tested without an edit)
FAMILY_VARIANTS = sorted(
    min((v for v in zoo.variants() if v.family == fam), key=lambda v: (v.resolution, v.width, v.name)).name
    for fam in {v.family for v in zoo.variants()})


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    return make_colours(tmp_path_factory.mktemp("calib"), per_class=4, noise=40, seed=5)


def test_deploy_form_computes_the_same_function():
    torch.manual_seed(0)
    model = zoo.build_model(zoo.get_variant("mobilenet_v3_small_0.75_96"), 3).eval()
    deployed = deploy_form(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.Hardsigmoid) for m in deployed.modules())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(deployed(x), model(x), atol=1e-6)


def _untrained(name: str, tmp_path):
    v = zoo.get_variant(name)
    torch.manual_seed(0)
    model = zoo.build_model(v, 3).eval()
    pp = Preprocess(v.resolution, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).to_dict()
    return checkpoint.save(tmp_path / "ck.pt", checkpoint.model_checkpoint(model, name, ["c0", "c1", "c2"], pp,
                                                                            {"source": "none"}))


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_VARIANTS)
def test_every_family_int8_tflite_is_all_xnnpack_and_runs_in_tflite_micro(name, calib, tmp_path):
    """One export per family checks both runtimes: XNNPACK takes every op of the int8 graph (none left on
    TFLite's slow kernels) and TensorFlow Lite Micro runs it in the arena select predicted."""
    v = zoo.get_variant(name)
    m = export(_untrained(name, tmp_path), tmp_path / "art", formats="tflite", precisions="int8", io="int8",
               calib=str(calib), calib_samples=12, verify=False, int8_for="litert")
    assert m["artifacts"][0]["undelegated_ops"] == []
    assert m["int8_graph"]["for"] == "litert"
    arena = measure_arena(tmp_path / "art" / "model_int8.tflite")
    assert arena.ok, arena.error
    assert arena.total_bytes == arena.head_bytes + arena.tail_bytes
    assert arena.head_bytes >= 2 * 3 * v.resolution ** 2  # at least an int8 input and a tensor as large
    assert arena.tail_bytes > 0
    predicted = peak_ram_bytes(measure_variant(v, 3).to_dict(), "int8", io="int8", int8_for="litert")
    assert predicted == pytest.approx(arena.total_bytes, rel=0.05)  # select's estimate, before any export


def test_microcontroller_int8_graph_keeps_hard_swish_and_its_smaller_arena(calib, tmp_path):
    """For TFLite Micro the int8 graph keeps HARD_SWISH (TFLM has the kernel; one tensor fewer alive) and the
    estimate follows that graph, smaller than the LiteRT-shaped one."""
    from ai_edge_litert.interpreter import Interpreter

    name = "mobilenet_v3_small_0.75_96"
    m = export(_untrained(name, tmp_path), tmp_path / "art", formats="tflite", precisions="int8", io="int8",
               calib=str(calib), calib_samples=12, verify=False, int8_for="tflite-micro")
    art = tmp_path / "art" / "model_int8.tflite"
    ops = {o["op_name"] for o in Interpreter(model_path=str(art))._get_ops_details()}
    assert "HARD_SWISH" in ops and m["int8_graph"]["hard_swish"] == "as the float graph"
    outside = {o["op"]: o["count"] for o in m["artifacts"][0]["undelegated_ops"]}
    assert outside == {"HARD_SWISH": sum(isinstance(x, torch.nn.Hardswish) for x in
                                         zoo.build_model(zoo.get_variant(name), 3).modules())}
    arena = measure_arena(art)
    assert arena.ok, arena.error
    stats = measure_variant(zoo.get_variant(name), 3).to_dict()
    micro = peak_ram_bytes(stats, "int8", io="int8", int8_for="tflite-micro")
    assert micro == pytest.approx(arena.total_bytes, rel=0.05)
    assert micro < peak_ram_bytes(stats, "int8", io="int8", int8_for="litert")
