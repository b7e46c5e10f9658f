"""The snapshot's one reader: files written before a key existed still open, for drawing and resuming."""

import torch

from cstylegan.config import TrainConfig
from cstylegan.snapshots.checkpoint import load_snapshot, open_for_inference, save_snapshot
from cstylegan.training.resume import Resume, start_nimg
from tests.conftest import COLOURS, assert_class_k_has_colour_k

ADDED_LATER = ("G_family", "D_backbone", "class_names")


def test_a_file_without_the_later_keys_opens_with_their_defaults(snapshot_path, tmp_path):
    current = load_snapshot(snapshot_path)
    older = {key: value for key, value in current.items() if key not in ADDED_LATER}
    save_snapshot(tmp_path / "older.pt", older)
    assert not set(ADDED_LATER) & set(torch.load(tmp_path / "older.pt", weights_only=True))

    reread = load_snapshot(tmp_path / "older.pt")
    assert (reread["G_family"], reread["D_backbone"], reread["class_names"]) == ("stylegan2", "resnet", [])
    opened = open_for_inference(tmp_path / "older.pt", with_D=True)
    assert opened.class_names == ["class0", "class1", "class2", "class3"]
    assert opened.D is not None and opened.cur_nimg == current["cur_nimg"]
    assert_class_k_has_colour_k(opened.G)  # the same trained weights, drawing the same colours


def test_open_for_inference_gives_class_names_and_d_only_when_asked(snapshot_path):
    opened = open_for_inference(snapshot_path)
    assert opened.class_names == list(COLOURS) and opened.D is None
    assert not opened.G.training and not any(p.requires_grad for p in opened.G.parameters())
    assert open_for_inference(snapshot_path, with_D=True).D is not None


OPTIONAL = ("attributes", "label_names", "config", "cur_nimg", "ada_p", "data_size")


def test_a_file_without_the_optional_keys_draws_and_resumes_from_nothing(snapshot_path, tmp_path):
    """An export, a blend or an NVlabs import holds none of these: drawing gets a class space
    and an empty config, resuming starts at image 0 with ADA p 0 and checks no data size."""
    bare = {key: value for key, value in load_snapshot(snapshot_path).items() if key not in OPTIONAL}
    save_snapshot(tmp_path / "bare.pt", {**bare, "attributes": None})  # older files wrote None for "none"
    opened = open_for_inference(tmp_path / "bare.pt")
    assert (opened.config, opened.cur_nimg, opened.labels.kind) == ({}, None, "class")
    assert opened.class_names == list(COLOURS)
    config = TrainConfig(data="x.zip", outdir=str(tmp_path), resume=str(tmp_path / "bare.pt"))
    resume = Resume.find(config, print, None)
    assert (resume.ada_p, start_nimg(config, resume), resume.snapshot["data_size"]) == (0.0, 0, None)
