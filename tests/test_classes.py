"""A class is named, numbered, listed or `all`; an unknown one lists the known names."""

import pytest

from cstylegan.data.classes import UnknownClassError, resolve_classes

NAMES = ["twemoji_male", "twemoji_female", "openmoji_male", "openmoji_female"]


def test_names_indices_lists_and_all():
    assert resolve_classes("openmoji_male", NAMES) == [2]
    assert resolve_classes("3", NAMES) == [3]
    assert resolve_classes("twemoji_female, 0", NAMES) == [1, 0]
    assert resolve_classes("all", NAMES) == [0, 1, 2, 3]


@pytest.mark.parametrize("spec", ["ghibli_male", "4", "-1", "twemoji_male,,"])
def test_unknown_class_lists_known_names(spec):
    with pytest.raises(UnknownClassError) as error:
        resolve_classes(spec, NAMES)
    assert all(name in str(error.value) for name in NAMES)
