"""Presets resolve to the official numbers; overrides win; YAML round-trips."""

import pytest

from cstylegan.config import ConfigError, TrainConfig, load_yaml, save_yaml
from cstylegan.networks import DISCRIMINATORS, GENERATORS


def test_auto_follows_official_formula_at_256():
    config = TrainConfig(data="x.zip").resolve(256)
    assert config.batch == 16  # min(4096 // 256, 32)
    assert config.gamma == pytest.approx(0.0002 * 256**2 / 16)
    assert config.cbase == 16384 and config.cmax == 512
    assert config.glr == config.dlr == 0.0025
    assert config.ema_kimg == pytest.approx(16 * 10 / 32)
    assert config.ema_rampup == 0.05
    assert config.map_depth == 2
    assert config.mbstd_group == 4


def test_auto_gamma_and_ema_follow_an_overridden_batch():
    config = TrainConfig(data="x.zip", batch=64).resolve(64)
    assert config.gamma == pytest.approx(0.0002 * 64**2 / 64)
    assert config.ema_kimg == pytest.approx(20)


def test_paper256_preset_and_overrides():
    config = TrainConfig(data="x.zip", cfg="paper256", gamma=3.0, map_depth=4).resolve(256)
    assert (config.batch, config.cbase, config.mbstd_group, config.ema_kimg) == (64, 16384, 8, 20)
    assert config.gamma == 3.0 and config.map_depth == 4


def test_small_preset_has_tiny_channels():
    config = TrainConfig(data="x.zip", cfg="small").resolve(32)
    G_kwargs, D_kwargs = config.network_kwargs(c_dim=4)
    assert G_kwargs["channel_base"] == D_kwargs["channel_base"] == 2048
    assert G_kwargs["channel_max"] == 128
    assert G_kwargs["c_dim"] == D_kwargs["c_dim"] == 4
    assert G_kwargs["img_resolution"] == 32
    assert D_kwargs["epilogue_kwargs"]["mbstd_group_size"] == 4


@pytest.mark.parametrize(
    "kwargs, resolution, message",
    [
        (dict(cfg="nope"), 32, "unknown --cfg"),
        (dict(batch=6), 32, "not divisible"),
        (dict(gamma=-1.0), 32, "non-negative"),
        (dict(), 48, "power of two"),
    ],
)
def test_bad_settings_are_refused(kwargs, resolution, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data="x.zip", **kwargs).resolve(resolution)


def test_yaml_round_trip(tmp_path):
    config = TrainConfig(data="x.zip", cond=True, cfg="small").resolve(16)
    config.class_names = ["a_male", "a_female"]
    save_yaml(config, tmp_path / "config.yaml")
    assert load_yaml(tmp_path / "config.yaml") == config


def test_mixed_precision_is_the_default_and_fp32_turns_it_off():
    mixed = TrainConfig(data="x", cfg="small").resolve(64)
    assert mixed.num_fp16_res == 4 and mixed.network_kwargs(2)[0]["num_fp16_res"] == 4
    assert mixed.network_kwargs(2)[1]["num_fp16_res"] == 4
    plain = TrainConfig(data="x", cfg="small", fp32=True).resolve(64)
    assert plain.num_fp16_res == 0 and plain.network_kwargs(2)[0]["num_fp16_res"] == 0


def test_channels_last_reaches_the_stylegan2_blocks():
    """--channels-last sets NVlabs' fp16_channels_last on StyleGAN2's G blocks and every D block;
    StyleGAN3's G, which has no such layout, is built without it."""
    for cfg, family in (("small", "stylegan2"), ("stylegan3-t", "stylegan3")):
        G_kwargs, D_kwargs = TrainConfig(data="x", cfg=cfg, channels_last=True).resolve(32).network_kwargs(2)
        G, D = GENERATORS[family](**G_kwargs), DISCRIMINATORS["resnet"](**D_kwargs)
        G_flags = [m.fp16_channels_last for m in G.modules() if hasattr(m, "fp16_channels_last")]
        D_flags = [m.fp16_channels_last for m in D.modules() if hasattr(m, "fp16_channels_last")]
        assert G_flags == ([True] * 4 if family == "stylegan2" else [])
        assert D_flags == [True] * 3
    assert TrainConfig(data="x", cfg="small").resolve(32).network_kwargs(2)[0]["fp16_channels_last"] is False
