"""Transfer across class lists: shared classes kept, new ones added, first images unchanged."""

import pytest
import torch

from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator
from cstylegan.snapshots.checkpoint import CheckpointError
from cstylegan.snapshots.class_transfer import transfer_state

G_KWARGS = dict(z_dim=32, w_dim=32, img_resolution=8, img_channels=3, channel_base=256, channel_max=32,
                mapping_kwargs=dict(num_layers=2))
D_KWARGS = dict(img_resolution=8, img_channels=3, channel_base=256, channel_max=32)


def perturbed(module):
    """Random weights and averages, so that a tensor left at its initial value shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.1)
    return module.eval()


def images(G, c, seed=0):
    z = torch.randn([6, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G(z, c.expand(6, -1), noise_mode="const")


def one_hot(k, n):
    return torch.eye(n)[k : k + 1]


def test_unconditional_to_conditional_starts_with_the_pretrained_images():
    base = perturbed(Generator(c_dim=0, **G_KWARGS))
    target = Generator(c_dim=3, **G_KWARGS).eval()
    report = transfer_state(base.state_dict(), [], target, ["a", "b", "c"], "G")
    for k in range(3):
        torch.testing.assert_close(images(target, one_hot(k, 3)), images(base, torch.zeros([1, 0])), atol=1e-5, rtol=0)
    assert torch.equal(target.mapping.w_avg_per_class, base.mapping.w_avg.expand(3, -1))
    assert any("mapping.fc0.weight: widened from 32 to 64 inputs" in line for line in report)
    # The pretrained model is matched, yet the label path is live: its gradient is not zero.
    target.requires_grad_(True)
    images_k = target(torch.randn([4, 32]), one_hot(1, 3).expand(4, -1)).square().sum()
    images_k.backward()
    assert target.mapping.fc0.weight.grad[:, 32:].abs().sum() > 0


def test_new_class_list_keeps_shared_classes():
    base = perturbed(Generator(c_dim=2, **G_KWARGS))
    target = Generator(c_dim=2, **G_KWARGS).eval()
    report = transfer_state(base.state_dict(), ["a", "b"], target, ["b", "c"], "G")
    assert torch.equal(target.mapping.embed.weight[:, 0], base.mapping.embed.weight[:, 1])
    assert not torch.equal(target.mapping.embed.weight[:, 1], base.mapping.embed.weight[:, 0])
    assert torch.equal(target.mapping.w_avg_per_class[0], base.mapping.w_avg_per_class[1])
    assert torch.equal(target.mapping.w_avg_per_class[1], base.mapping.w_avg)
    torch.testing.assert_close(images(target, one_hot(0, 2)), images(base, one_hot(1, 2)), atol=1e-6, rtol=0)
    assert any("kept 1 of 2 class columns" in line for line in report)


def test_discriminator_gets_a_fresh_projection_head():
    base = perturbed(Discriminator(c_dim=0, **D_KWARGS))
    target = Discriminator(c_dim=3, **D_KWARGS)
    report = transfer_state(base.state_dict(), [], target, ["a", "b", "c"], "D")
    assert torch.equal(target.b8.conv0.weight, base.b8.conv0.weight)
    assert any("b4.out.weight: re-initialised" in line for line in report)
    assert any("mapping.embed.weight: re-initialised" in line for line in report)


def test_other_architecture_is_refused():
    base = Generator(c_dim=0, **{**G_KWARGS, "channel_max": 16})
    with pytest.raises(CheckpointError, match="differ in more than their classes"):
        transfer_state(base.state_dict(), [], Generator(c_dim=0, **G_KWARGS), [], "G")


def test_unnamed_nvlabs_classes_are_matched_by_index():
    base = perturbed(Generator(c_dim=2, **G_KWARGS))
    target = Generator(c_dim=3, **G_KWARGS).eval()
    transfer_state(base.state_dict(), ["class0", "class1"], target, ["x", "y", "z"], "G")
    assert torch.equal(target.mapping.embed.weight[:, :2], base.mapping.embed.weight)
    assert torch.equal(target.mapping.w_avg_per_class[2], base.mapping.w_avg)
