"""--ds-weight: the diversity-sensitive G term, against an independent formula; off, NVlabs' loss."""

import pytest
import torch
import torch.nn.functional as F

from cstylegan.config import ConfigError, TrainConfig
from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator
from cstylegan.training.loss import StyleGAN2Loss

SIZES = dict(img_resolution=16, img_channels=3, channel_base=256, channel_max=16)


@pytest.fixture
def networks():
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=3, w_dim=8, mapping_kwargs=dict(num_layers=2), **SIZES)
    # A fresh G's noise strengths are 0, so its random noise does not change its images and
    # the loss's own forward pass and the one below give the same pictures.
    D = Discriminator(c_dim=3, epilogue_kwargs=dict(mbstd_group_size=2), **SIZES)
    z = torch.randn([8, 8])
    c = torch.eye(3)[[0, 1, 2, 0, 2, 1, 1, 0]]
    return G, D, z, c


def pool4(img):
    """Mean over each 4x4 block, by reshaping (not by avg_pool2d)."""
    n, ch, h, w = img.shape
    return img.reshape(n, ch, h // 4, 4, w // 4, 4).mean(dim=(3, 5))


def test_the_term_is_the_capped_pooled_distance_per_latent_distance(networks):
    G, D, z, c = networks
    loss = StyleGAN2Loss(G, D, style_mixing_prob=0, ds_weight=2.0, ds_tau=10.0, ds_pool=4)
    value, stats = loss.G_main(z, c)

    paired = torch.cat([c[:4], c[:4]])  # the second half draws the first half's classes
    img = G.synthesis(G.mapping(z, paired), noise_mode="const")
    adversarial = F.softplus(-D(img, paired)).mean()
    a, b = pool4(img[:4]), pool4(img[4:])
    ratios = [(a[i] - b[i]).abs().mean() / (z[i] - z[4 + i]).abs().mean() for i in range(4)]
    term = torch.stack(ratios).mean()
    torch.testing.assert_close(stats["Loss/G/ds"], term)
    torch.testing.assert_close(value, adversarial - 2.0 * term)
    assert 0 < term < 10  # below the cap here


def test_each_pair_is_capped_at_tau(networks):
    G, D, z, c = networks
    loss = StyleGAN2Loss(G, D, style_mixing_prob=0, ds_weight=1.0, ds_tau=1e-6, ds_pool=4)
    _, stats = loss.G_main(z, c)
    assert stats["Loss/G/ds"].item() == pytest.approx(1e-6)


def test_off_by_default_is_the_plain_non_saturating_loss(networks):
    G, D, z, c = networks
    value, stats = StyleGAN2Loss(G, D, style_mixing_prob=0).G_main(z, c)
    img = G.synthesis(G.mapping(z, c), noise_mode="const")
    torch.testing.assert_close(value, F.softplus(-D(img, c)).mean())
    assert "Loss/G/ds" not in stats


def test_its_gradient_pushes_the_pair_apart(networks):
    G, D, z, c = networks
    loss = StyleGAN2Loss(G, D, style_mixing_prob=0, ds_weight=1.0, ds_tau=10.0, ds_pool=4)
    img_a = torch.zeros([1, 3, 16, 16], requires_grad=True)
    img_b = torch.ones([1, 3, 16, 16]) * 0.5
    term = loss.diversity_term(img_a, img_b, torch.zeros([1, 8]), torch.ones([1, 8]))
    term.backward()
    assert term.item() == pytest.approx(0.5) and (img_a.grad < 0).all()  # a moves away from b


@pytest.mark.parametrize("settings, message", [
    (dict(ds_weight=-1), "--ds-weight -1 is out of range; give a non-negative weight"),
    (dict(ds_pool=0), "--ds-pool 0 is out of range; give a pooling factor of at least 1"),
    (dict(ds_pool=3), "--ds-pool 3 does not divide the 32 px images"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data="x", cfg="small", **settings).resolve(32)
