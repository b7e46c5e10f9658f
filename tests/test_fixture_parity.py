"""Our StyleGAN2 G and D, given NVlabs' tensors under NVlabs' names, compute NVlabs'
numbers (fixtures made with NVlabs/stylegan3 `training/networks_stylegan2.py`)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.mapping import MappingNetwork
from cstylegan.networks.stylegan2 import Generator

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "nvlabs"
ATOL = 1e-4


def load_fixture(name):
    if not FIXTURES.is_dir():
        reason = f"NVlabs fixtures not found at {FIXTURES}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    arrays = dict(np.load(FIXTURES / f"{name}.npz"))
    return meta, {k: torch.from_numpy(v) for k, v in arrays.items()}


def tensors_under(prefix, tensors):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


@pytest.fixture(scope="module", params=["sg2_cond32", "sg2_uncond32"])
def nets(request):
    meta, t = load_fixture(request.param)
    G = Generator(**meta["G_kwargs"]).eval()
    D = Discriminator(**meta["D_kwargs"]).eval()
    result = G.load_state_dict(tensors_under("G.", t), strict=False)
    # Only our extra per-class average is absent from an NVlabs network.
    expected_missing = ["mapping.w_avg_per_class"] if G.c_dim > 0 else []
    assert result.missing_keys == expected_missing and result.unexpected_keys == []
    D.load_state_dict(tensors_under("D.", t), strict=True)
    return G, D, t


@pytest.mark.parametrize("tag,psi", [("psi100", 1.0), ("psi070", 0.7)])
@pytest.mark.parametrize("fused_modconv", [True, False])
def test_matches_nvlabs(nets, tag, psi, fused_modconv):
    G, D, t = nets
    with torch.no_grad():
        ws = G.mapping(t["z"], t["c"], truncation_psi=psi, truncation_center="global")
        img = G.synthesis(ws, noise_mode="const", fused_modconv=fused_modconv)
        logits = D(img, t["c"])
    torch.testing.assert_close(ws, t[f"{tag}.ws"], rtol=0, atol=ATOL)
    torch.testing.assert_close(img, t[f"{tag}.img"], rtol=0, atol=ATOL)
    torch.testing.assert_close(logits, t[f"{tag}.D_logits"], rtol=0, atol=ATOL)
    # The whole generator gives the same image.
    with torch.no_grad():
        img_g = G(t["z"], t["c"], truncation_psi=psi, noise_mode="const", fused_modconv=fused_modconv)
    torch.testing.assert_close(img_g, img, rtol=0, atol=1e-6)


def test_double_backward(nets):
    """R1 needs d/dparams of |dD/dimg|^2; path length needs d/dparams of d img / d ws."""
    G, D, t = nets
    img = t["psi100.img"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(img, t["c"]).sum(), img, create_graph=True)
    grad.square().sum().backward()
    # dD/dimg does not depend on the final bias; every other parameter gets a gradient.
    for name, p in D.named_parameters():
        if name != "b4.out.bias":
            assert p.grad is not None and torch.isfinite(p.grad).all(), name

    ws = G.mapping(t["z"], t["c"]).detach().requires_grad_(True)
    out = G.synthesis(ws, noise_mode="const")
    (grad_ws,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), ws, create_graph=True)
    grad_ws.square().sum().backward()
    assert torch.isfinite(G.synthesis.b32.conv1.weight.grad).all()
    assert G.synthesis.b32.conv1.weight.grad.abs().sum() > 0
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)


def test_random_noise_and_train_mode_run(nets):
    G, _, t = nets
    G.train()
    try:
        img = G(t["z"][:2], t["c"][:2], noise_mode="random")
    finally:
        G.eval()
    assert img.shape == (2, G.img_channels, G.img_resolution, G.img_resolution)
    assert torch.isfinite(img).all()


def make_conditional_mapping():
    torch.manual_seed(0)
    return MappingNetwork(z_dim=8, c_dim=3, w_dim=8, num_ws=4, num_layers=2, w_avg_beta=0.9)


def test_per_class_w_avg_updates_only_present_classes():
    mapping = make_conditional_mapping()
    start = torch.randn(3, 8)
    mapping.w_avg_per_class.copy_(start)
    z = torch.randn(6, 8)
    c = torch.nn.functional.one_hot(torch.tensor([0, 2, 0, 2, 2, 1]), 3).float()
    c[5] = 0  # a sample without a class counts for the global average only
    with torch.no_grad():
        w = mapping(z, c)[:, 0]
        mapping(z, c, update_emas=True)
    expected = start.clone()
    expected[0] = 0.9 * start[0] + 0.1 * w[[0, 2]].mean(dim=0)
    expected[2] = 0.9 * start[2] + 0.1 * w[[1, 3, 4]].mean(dim=0)
    torch.testing.assert_close(mapping.w_avg_per_class, expected)
    assert torch.equal(mapping.w_avg_per_class[1], start[1])  # class 1 absent: untouched
    torch.testing.assert_close(mapping.w_avg, 0.1 * w.mean(dim=0))  # global EMA from zero, as official


def test_per_class_w_avg_starts_at_the_first_batch_mean():
    mapping = make_conditional_mapping()
    z = torch.randn(4, 8)
    c = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1]), 3).float()
    with torch.no_grad():
        w = mapping(z, c)[:, 0]
        mapping(z, c, update_emas=True)
    torch.testing.assert_close(mapping.w_avg_per_class[:2], torch.stack([w[:2].mean(0), w[2:].mean(0)]))
    assert torch.equal(mapping.w_avg_per_class[2], torch.zeros(8))


def test_class_truncation():
    mapping = make_conditional_mapping()
    mapping.w_avg_per_class.copy_(torch.randn(3, 8))
    z = torch.randn(4, 8)
    labels = torch.tensor([1, 0, 2, 1])
    c = torch.nn.functional.one_hot(labels, 3).float()
    with torch.no_grad():
        w0 = mapping(z, c, truncation_psi=0, truncation_center="class")
        free = mapping(z, c)
        half = mapping(z, c, truncation_psi=0.5, truncation_cutoff=2, truncation_center="class")
    assert torch.equal(w0, mapping.w_avg_per_class[labels].unsqueeze(1).expand(4, 4, 8))
    centre = mapping.w_avg_per_class[labels].unsqueeze(1)
    torch.testing.assert_close(half[:, :2], centre + 0.5 * (free[:, :2] - centre))
    assert torch.equal(half[:, 2:], free[:, 2:])

    uncond = MappingNetwork(z_dim=8, c_dim=0, w_dim=8, num_ws=4, num_layers=2)
    with pytest.raises(ValueError, match="class"):
        uncond(z, None, truncation_psi=0.5, truncation_center="class")


@pytest.mark.parametrize("g_arch,d_arch", [("orig", "skip"), ("resnet", "orig")])
def test_other_architectures_run(g_arch, d_arch):
    """The architectures the fixtures do not cover build, run and keep their shapes."""
    torch.manual_seed(0)
    G = Generator(16, 2, 16, 16, 3, mapping_kwargs=dict(num_layers=2), channel_base=256,
                  channel_max=16, conv_clamp=256, architecture=g_arch, use_noise=False)
    D = Discriminator(2, 16, 3, architecture=d_arch, channel_base=256, channel_max=16,
                      block_kwargs=dict(freeze_layers=2), epilogue_kwargs=dict(mbstd_group_size=2))
    c = torch.eye(2)[[0, 1, 1, 0]]
    img = G(torch.randn(4, 16), c, truncation_psi=0.5, truncation_cutoff=2)
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img).all()
    assert D(img, c).shape == (4, 1)
    assert not hasattr(G.synthesis.b8.conv1, "noise_strength")
    # Freeze-D: the first two layers (b16.fromrgb, b16.conv0) stop learning.
    frozen = {name for name, p in D.named_parameters() if not p.requires_grad}
    assert frozen == {"b16.fromrgb.weight", "b16.fromrgb.bias", "b16.conv0.weight", "b16.conv0.bias"}
