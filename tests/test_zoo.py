import re

import pytest

from edgefit import zoo
from edgefit.errors import BadInput

# TF-slim published tables (1001 classes): million MACs, million parameters. Test data only:
# edgefit computes these from the real networks and must land within 3%.
TFSLIM_V1 = {
    (1.0, 224): (569, 4.24), (1.0, 192): (418, 4.24), (1.0, 160): (291, 4.24), (1.0, 128): (186, 4.24),
    (0.75, 224): (317, 2.59), (0.75, 192): (233, 2.59), (0.75, 160): (162, 2.59), (0.75, 128): (104, 2.59),
    (0.5, 224): (150, 1.34), (0.5, 192): (110, 1.34), (0.5, 160): (77, 1.34), (0.5, 128): (49, 1.34),
    (0.25, 224): (41, 0.47), (0.25, 192): (34, 0.47), (0.25, 160): (21, 0.47), (0.25, 128): (14, 0.47),
}
TFSLIM_V2 = {
    (1.4, 224): (582, 6.06), (1.3, 224): (509, 5.34),
    (1.0, 224): (300, 3.47), (1.0, 192): (221, 3.47), (1.0, 160): (154, 3.47), (1.0, 128): (99, 3.47),
    (1.0, 96): (56, 3.47),
    (0.75, 224): (209, 2.61), (0.75, 192): (153, 2.61), (0.75, 160): (107, 2.61), (0.75, 128): (69, 2.61),
    (0.75, 96): (39, 2.61),
    (0.5, 224): (97, 1.95), (0.5, 192): (71, 1.95), (0.5, 160): (50, 1.95), (0.5, 128): (32, 1.95),
    (0.5, 96): (18, 1.95),
    (0.35, 224): (59, 1.66), (0.35, 192): (43, 1.66), (0.35, 160): (30, 1.66), (0.35, 128): (20, 1.66),
    (0.35, 96): (11, 1.66),
}
# The tables print whole millions of MACs (V1 rounds, V2 truncates: 300.78 is printed 300), so one
# million is added to the 3% on top of that quantization.
QUANTUM_M = 1.0
# Erratum: the V1 table prints 34 M MACs for 0.25_192, but every other row scales with resolution
# squared (0.25_224 -> 41 * (192/224)^2 = 30.1 M); the row is checked against that scaling instead.
ERRATA = {("mobilenet_v1", 0.25, 192): 41 * (192 / 224) ** 2}


def test_catalog_size_and_names():
    vs = zoo.variants()
    assert len(vs) >= 60
    names = [v.name for v in vs]
    assert len(set(names)) == len(names)
    for v in vs:
        assert re.fullmatch(r"mobilenet_v\d(_[a-z]+)*_\d\.\d+_\d+", v.name), v.name
        assert v.name == f"{v.family}_{v.name.split('_')[-2]}_{v.resolution}"
    for n in ["mobilenet_v1_0.25_224", "mobilenet_v2_0.35_96", "mobilenet_v2_1.4_224",
              "mobilenet_v3_small_0.75_224", "mobilenet_v3_large_1.0_160", "mobilenet_v3_small_minimal_1.0_224"]:
        assert zoo.get_variant(n).name == n
    fams = zoo.families()
    assert {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
            "mobilenet_v4_conv_small", "mobilenet_v4_conv_medium"} <= set(fams)


@pytest.mark.parametrize("v", zoo.variants(), ids=lambda v: v.name)
def test_every_entry_has_a_sourced_prior(v):
    sources = zoo.sources()
    assert 0 < v.accuracy_float < 1
    assert v.accuracy_float_source.split(" ")[0] in sources
    if v.accuracy_estimated:
        assert "estimated" in v.accuracy_float_source and v.accuracy_method
    if v.accuracy_int8 is not None:
        assert v.accuracy_int8_source in sources and v.accuracy_int8 <= v.accuracy_float


def test_unknown_variant_did_you_mean():
    with pytest.raises(BadInput, match="did you mean mobilenet_v1_0.25_224"):
        zoo.get_variant("mobilenet_v1_025_224")


def test_family_filter():
    assert {v.family for v in zoo.filter_family("v3")} == {
        "mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v3_small_minimal", "mobilenet_v3_large_minimal"}
    assert {v.family for v in zoo.filter_family("mobilenet_v3_small")} == {
        "mobilenet_v3_small", "mobilenet_v3_small_minimal"}
    with pytest.raises(BadInput, match="unknown family"):
        zoo.filter_family("v9")


@pytest.mark.parametrize("family,table", [("mobilenet_v1", TFSLIM_V1), ("mobilenet_v2", TFSLIM_V2)])
def test_macs_params_match_tfslim(family, table):
    from edgefit.trace import measure_variant

    rows = [v for v in zoo.variants() if v.family == family]
    assert {(v.width, v.resolution) for v in rows} == set(table)
    for v in rows:
        macs_m, params_m = table[(v.width, v.resolution)]
        macs_m = ERRATA.get((family, v.width, v.resolution), macs_m)
        s = measure_variant(v, 1001)
        assert abs(s.macs / 1e6 - macs_m) <= 0.03 * macs_m + QUANTUM_M, (v.name, s.macs, macs_m)
        assert abs(s.params / 1e6 - params_m) <= 0.03 * params_m, (v.name, s.params, params_m)
