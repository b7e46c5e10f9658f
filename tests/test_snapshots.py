"""The snapshot's one reader: files written before a key existed still open, for drawing and resuming."""

import torch

from cstylegan.snapshots.checkpoint import load_snapshot, open_for_inference, save_snapshot
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
