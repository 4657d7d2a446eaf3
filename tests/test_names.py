"""Canonical neuron names: classes, partners, source spellings, CeNGEN types, did-you-mean."""

from __future__ import annotations

import pytest

from digiworm import DigiwormError, UnknownNameError
from digiworm._errors import suggest
from digiworm.atlas import neuron_class, resolve_neuron, to_canonical
from digiworm.atlas._names import bilateral_partner, cengen_class, dv_partner, natural_key


@pytest.fixture(scope="module")
def cengen_ids(atlas) -> list[str]:
    return [str(c) for c in atlas.dataset("cengen").cengen_class.values]


def test_302_unique_canonical_names(canonical_names):
    assert len(canonical_names) == 302
    assert len(set(canonical_names)) == 302
    assert canonical_names == sorted(canonical_names, key=natural_key)
    assert canonical_names.index("AS2") < canonical_names.index("AS10")


def test_118_classes(canonical_names):
    # White et al. 1986: 302 neurons in 118 classes.
    classes = {neuron_class(n, canonical_names) for n in canonical_names}
    assert len(classes) == 118


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("SMDDL", "SMD"),
        ("SMDVR", "SMD"),
        ("RMED", "RME"),
        ("RMEL", "RME"),
        ("RID", "RID"),  # a lone neuron ending in D: not a D/V member of some "RI" class
        ("RIVL", "RIV"),
        ("VA12", "VA"),
        ("AWCR", "AWC"),
        ("SABVL", "SAB"),
        ("SABD", "SAB"),
        ("IL2DL", "IL2"),
        ("IL2L", "IL2"),
        ("AVAL", "AVA"),
        ("DD1", "DD"),
        ("I2L", "I2"),
        ("PVR", "PVR"),
        ("AVL", "AVL"),  # unpaired neuron ending in L: not a left member of "AV"
    ],
)
def test_neuron_class(canonical_names, name, cls):
    assert neuron_class(name, canonical_names) == cls


def test_rid_and_riv_stay_separate(canonical_names):
    rid = neuron_class("RID", canonical_names)
    riv = {neuron_class(n, canonical_names) for n in ("RIVL", "RIVR")}
    assert riv == {"RIV"}
    assert rid != "RIV"


@pytest.mark.parametrize(
    ("name", "partner"),
    [("AVAL", "AVAR"), ("AVAR", "AVAL"), ("SMDDL", "SMDDR"), ("AVL", None), ("RID", None),
     ("VA12", None)],
)  # fmt: skip
def test_bilateral_partner(canonical_names, name, partner):
    assert bilateral_partner(name, canonical_names) == partner


@pytest.mark.parametrize(
    ("name", "partner"),
    [("SMDDL", "SMDVL"), ("SMDVR", "SMDDR"), ("RMED", "RMEV"), ("RMEV", "RMED"),
     ("IL2DL", "IL2VL"), ("RMEL", None), ("AVAL", None), ("RID", None)],
)  # fmt: skip
def test_dv_partner(canonical_names, name, partner):
    assert dv_partner(name, canonical_names) == partner


def test_partners_are_involutions(canonical_names):
    for n in canonical_names:
        for fn in (bilateral_partner, dv_partner):
            p = fn(n, canonical_names)
            if p is not None:
                assert p in canonical_names
                assert fn(p, canonical_names) == n
                assert neuron_class(p, canonical_names) == neuron_class(n, canonical_names)


@pytest.mark.parametrize(
    ("raw", "canon"),
    [
        ("AWCON", "AWCR"),
        ("AWCOFF", "AWCL"),
        ("AWCOF", "AWCL"),  # funatlas.h5 truncates ids to 5 bytes
        ("awc_on", "AWCR"),
        ("VB01", "VB1"),
        ("vb01", "VB1"),
        ("DA09", "DA9"),
        ("  avAl ", "AVAL"),
        ("AS10", "AS10"),
        ("smddl", "SMDDL"),
    ],
)
def test_to_canonical_aliases(canonical_names, raw, canon):
    assert to_canonical(raw, canonical_names) == canon


@pytest.mark.parametrize("raw", ["MUSCLE", "BWM-VL01", "VA13", "AVA", "", "AWC"])
def test_to_canonical_rejects_non_neurons(canonical_names, raw):
    assert to_canonical(raw, canonical_names) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AWCL", "AWC_OFF"),
        ("AWCR", "AWC_ON"),
        ("VB2", "VB02"),
        ("VB1", "VB01"),
        ("VB3", "VB"),
        ("VC4", "VC_4_5"),
        ("VC5", "VC_4_5"),
        ("VC1", "VC"),
        ("DD3", "VD_DD"),
        ("VD7", "VD_DD"),
        ("RMDDL", "RMD_DV"),
        ("RMDL", "RMD_LR"),
        ("RMED", "RME_DV"),
        ("RMEL", "RME_LR"),
        ("IL2DL", "IL2_DV"),
        ("ASEL", "ASEL"),
        ("ASER", "ASER"),
        ("AVAL", "AVA"),
    ],
)
def test_cengen_class(canonical_names, cengen_ids, name, expected):
    assert expected in cengen_ids
    cls = neuron_class(name, canonical_names)
    assert cengen_class(name, cls, cengen_ids) == expected


def test_cengen_class_none_when_not_profiled():
    assert cengen_class("AVAL", "AVA", ["AVB", "AVE"]) is None


def test_resolve_neuron(canonical_names):
    assert resolve_neuron("awcon", canonical_names) == "AWCR"
    assert resolve_neuron("VB01", canonical_names) == "VB1"


def test_resolve_neuron_did_you_mean(canonical_names):
    # A transposition typo of AVAL: AVAL should be among the suggestions.
    with pytest.raises(UnknownNameError) as info:
        resolve_neuron("AVLA", canonical_names)
    err = info.value
    assert isinstance(err, DigiwormError)
    assert isinstance(err, ValueError)
    assert err.kind == "neuron"
    assert "AVLA" in str(err)
    # the hint sentence itself says "e.g. AVAL", so look at the suggestion list, not the text
    assert "AVAL" in err.suggestions
    assert "did you mean" in str(err)
    assert "AVAL" in str(err).split("did you mean", 1)[1].split("?", 1)[0]


def test_resolve_neuron_suggests_close_name(canonical_names):
    with pytest.raises(UnknownNameError, match="AVAL") as info:
        resolve_neuron("AVAX", canonical_names)
    assert "AVAL" in info.value.suggestions


def test_suggest():
    found = suggest("AVLA", ["AVAL", "AVAR", "AVBL", "RIML"])
    assert found[0] == "AVAL"
    assert sorted(found) == ["AVAL", "AVAR", "AVBL"]
    assert suggest("avbl", ["AVAL", "AVBL"])[0] == "AVBL"  # case-insensitive, valid's spelling
    assert suggest("shk1", ["shk-1", "eat-4"]) == ["shk-1"]
    assert suggest("zzzz", ["AVAL", "AVAR"]) == []
    assert len(suggest("AVA", [f"AVA{c}" for c in "ABCDEFG"], n=2)) == 2


def test_unknown_name_error_message():
    err = UnknownNameError("gene", "shk-11x", ["shk-1", "eat-4"], hint="Genes are CeNGEN names.")
    msg = str(err)
    assert msg.startswith("unknown gene 'shk-11x'")
    assert "did you mean shk-1?" in msg
    assert msg.endswith("Genes are CeNGEN names.")
    assert err.suggestions == ["shk-1"]
