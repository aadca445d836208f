"""FACS catalogue, AU sets, AU parsing, emotion prototypes and posed classes."""

import pytest

from fer_tf import facs


def test_catalogue_covers_every_emotionet_column():
    assert sorted(facs.AU_CATALOGUE) == list(range(1, 61))
    assert facs.au_name(12) == "Lip Corner Puller"
    assert facs.AU_CATALOGUE[43].region == "eyes"
    assert facs.AU_CATALOGUE[3].defined is False
    assert facs.AU_CATALOGUE[1].code == "AU1"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("emotionet11", (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26)),
        ("emotionet12", (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)),
        ("disfa12", (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)),
        ("bp4d12", (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)),
    ],
)
def test_named_sets(name, expected):
    assert facs.parse_aus(name) == expected
    assert facs.parse_aus(name.upper()) == expected


def test_emotionet23_and_all60():
    s23 = facs.AU_SETS["emotionet23"]
    assert len(s23) == 23
    assert set(facs.AU_SETS["emotionet12"]) <= set(s23)
    assert {10, 15, 18, 24, 28, 51, 52, 53, 54, 55, 56} <= set(s23)
    assert facs.parse_aus("all60") == tuple(range(1, 61))


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("1,2,4", (1, 2, 4)),
        ("AU1,AU12", (1, 12)),
        (" au01 ; AU 2 ", (1, 2)),
        ("AU_25", (25,)),
        (12, (12,)),
        ([4, "AU1"], (4, 1)),
    ],
)
def test_parse_lists(spec, expected):
    assert facs.parse_aus(spec) == expected


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("emotionet13", "Did you mean 'emotionet23'"),
        ("AU61", "AU61"),
        ("0", "AU0"),
        ("1,,2", "empty entry"),
        ("", "at least one AU"),
        ("1,1", "twice"),
        ("AU1x", "AU1x"),
        (True, "AU set name"),
        ([], "at least one AU"),
    ],
)
def test_parse_errors_name_the_input(spec, fragment):
    with pytest.raises(ValueError) as info:
        facs.parse_aus(spec)
    assert "'aus' parameter" in str(info.value)
    assert fragment in str(info.value)


def test_emotion_prototypes_follow_seed_001_table_2():
    assert facs.EMOTIONS[0] == "neutral" and len(facs.EMOTIONS) == 7
    assert set(facs.EMOTION_PROTOTYPES) == set(facs.EMOTIONS)
    assert set(facs.EMOTION_PROTOTYPES["happiness"]) == {6, 12}
    assert set(facs.EMOTION_PROTOTYPES["fear"]) == {1, 2, 4, 5, 7, 20, 26}
    assert facs.EMOTION_PROTOTYPES["surprise"][5] < 1.0  # "5B": a slight AU5
    assert facs.EMOTION_PROTOTYPES["neutral"] == {}


def test_posed_classes():
    assert len(facs.POSED_CLASSES_12) == 12
    assert facs.POSED_CLASSES_12[0] == "spontaneous_happiness"
    assert facs.POSED_CLASSES_12[6] == "posed_happiness"
    assert facs.posed_class_index(1, "sadness") == 11
    assert facs.posed_class_index(0, "disgust") == 1
    assert facs.posed_class_index(1, "anything", num_classes=2) == 1
    with pytest.raises(ValueError, match="'posed' parameter"):
        facs.posed_class_index(2, "fear")
    with pytest.raises(ValueError, match="'emotion' parameter"):
        facs.posed_class_index(1, "neutral")
    with pytest.raises(ValueError, match="'num_classes' parameter"):
        facs.posed_class_index(1, "fear", num_classes=7)
