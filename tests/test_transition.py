"""Transitional training: class labels fade in from an unconditional start (--transition-kimg)."""


import pytest
import torch

from cstylegan.training.progress import read_stats
from cstylegan.config import ConfigError, TrainConfig
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.mapping import MappingNetwork, blend_labels
from cstylegan.snapshots.checkpoint import open_for_inference
from cstylegan.training.loss import StyleGAN2Loss
from tests.conftest import assert_class_k_has_colour_k, assert_one_line_error, run_cli, train_colours


def one_hot(labels, c_dim=4):
    return torch.nn.functional.one_hot(torch.tensor(labels), c_dim).float()


def test_blend_labels_moves_one_hot_towards_uniform():
    c = one_hot([0, 3])
    assert torch.equal(blend_labels(c, 1), c)
    assert torch.allclose(blend_labels(c, 0), torch.full([2, 4], 0.25))
    expected = torch.tensor([[0.625, 0.125, 0.125, 0.125], [0.125, 0.125, 0.125, 0.625]])
    assert torch.allclose(blend_labels(c, 0.5), expected)


def test_mapping_at_label_weight_zero_ignores_the_class_but_tracks_class_averages():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=8, c_dim=4, w_dim=8, num_ws=2, num_layers=2)
    z = torch.randn([1, 8]).repeat(4, 1)
    c = one_hot([0, 1, 2, 3])
    w_uncond = mapping(z, c, label_weight=0)
    assert torch.allclose(w_uncond, w_uncond[:1].expand_as(w_uncond), atol=1e-6)
    w_cond = mapping(z, c)
    assert (w_cond[0] - w_cond[3]).abs().max() > 1e-3
    assert torch.allclose(mapping(z, c, label_weight=0.3), mapping(z, blend_labels(c, 0.3)), atol=1e-6)

    mapping(torch.randn([6, 8]), one_hot([2] * 6), update_emas=True, label_weight=0)
    rows_updated = mapping.w_avg_per_class.abs().sum(dim=1) > 0
    assert rows_updated.tolist() == [False, False, True, False]


def test_label_weight_rises_linearly_between_start_and_end():
    loss = StyleGAN2Loss(G=None, D=None, transition_kimg=[8, 24])
    for kimg, weight in [(0, 0), (8, 0), (12, 0.25), (16, 0.5), (24, 1), (100, 1)]:
        loss.cur_nimg = kimg * 1000
        assert loss.label_weight() == pytest.approx(weight)
    assert StyleGAN2Loss(G=None, D=None).label_weight() == 1


def test_discriminator_sees_the_blended_labels():
    torch.manual_seed(0)
    D = Discriminator(c_dim=4, img_resolution=8, img_channels=3, channel_base=256, channel_max=16,
                      epilogue_kwargs=dict(mbstd_group_size=2))
    loss = StyleGAN2Loss(G=None, D=D, transition_kimg=[0, 10])
    loss.cur_nimg = 2500
    img, c = torch.randn([4, 3, 8, 8]), one_hot([0, 1, 2, 3])
    assert torch.allclose(loss.run_D(img, c), D(img, blend_labels(c, 0.25)))
    loss.cur_nimg = 0
    scores = loss.run_D(img[:1].repeat(4, 1, 1, 1), c)
    assert torch.allclose(scores, scores[:1].expand_as(scores), atol=1e-6)


@pytest.mark.slow
def test_a_transitional_run_logs_the_weight_and_ends_class_conditional(colour_zip, tmp_path):
    run_dir = train_colours(colour_zip, tmp_path, transition_kimg=[0.25, 0.75])
    records = read_stats(run_dir / "stats.jsonl")
    for record in records:
        last_step_kimg = record["Progress/kimg"] - 16 / 1000  # the weight of the tick's last minibatch of 16
        expected = min(max((last_step_kimg - 0.25) / 0.5, 0), 1)
        assert record["Progress/label_weight"] == pytest.approx(expected)
    assert records[0]["Progress/label_weight"] < 0.5 and records[-1]["Progress/label_weight"] == 1
    G = open_for_inference(sorted(run_dir.glob("network-snapshot-*.pt"))[-1]).G
    assert_class_k_has_colour_k(G)


@pytest.mark.slow
def test_bad_transition_settings_are_refused_in_one_line(colour_zip, tmp_path):
    with pytest.raises(ConfigError, match="add --cond"):
        TrainConfig(data="x.zip", transition_kimg=[1, 2]).resolve(16)
    with pytest.raises(ConfigError, match="START < END"):
        TrainConfig(data="x.zip", cond=True, transition_kimg=[5, 2]).resolve(16)
    cases = [(["--cond"], "8", "not START,END"), (["--cond"], "8,x", "not START,END"),
             ([], "8,24", "add --cond"), (["--cond"], "24,8", "START < END")]
    for flags, value, message in cases:
        result = run_cli("train.py", *flags, "--data", str(colour_zip), "--outdir", str(tmp_path),
                         "--device", "cpu", "--kimg", "0.064", "--transition-kimg", value)
        assert_one_line_error(result, message)

    config = tmp_path / "scalar.yaml"
    config.write_text(f"data: {colour_zip}\ncond: true\ntransition_kimg: 8\nkimg: 0.064\ndevice: cpu\n")
    assert_one_line_error(run_cli("train.py", "--config", str(config), "--outdir", str(tmp_path)), "START,END")
