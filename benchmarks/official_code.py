"""The official NVlabs networks and loss, driven like our benchmark drives ours.

Only for `train_speed.py --vs-official DIR`, where DIR is the user's own copy of
NVlabs/stylegan3 (its `training/` holds both the StyleGAN2 and StyleGAN3 networks). Nothing
of that code is part of this repo: it is imported from DIR at run time. Every phase runs as
NVlabs' training loop runs it: zero_grad, requires_grad on, accumulate_gradients with the
phase's interval as gain, requires_grad off, non-finite gradients zeroed, Adam step.
"""

import importlib.util
import sys
import types
from pathlib import Path

import torch

from cstylegan.training.phases import optimizer

CODE_NOT_FOUND = "{dir} is not a copy of NVlabs/stylegan3 (no training/networks_stylegan2.py); clone it there"


def check_copy(directory) -> Path:
    """The directory, if it holds NVlabs/stylegan3's code; else exit with one line."""
    root = Path(directory).resolve()
    if not (root / "training" / "networks_stylegan2.py").is_file():
        raise SystemExit(CODE_NOT_FOUND.format(dir=root))
    return root


def import_official(directory):
    """(networks_stylegan2, networks_stylegan3, loss) modules of the code in `directory`."""
    root = check_copy(directory)
    if importlib.util.find_spec("pkg_resources") is None:  # their gradfix ops import it; new setuptools dropped it
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    sys.path.insert(0, str(root))
    from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix
    from training import loss, networks_stylegan2, networks_stylegan3

    conv2d_gradfix.enabled = True  # as their training loop sets them
    grid_sample_gradfix.enabled = True
    return networks_stylegan2, networks_stylegan3, loss


def official_setup(directory, config, G_kwargs: dict, D_kwargs: dict, device):
    """(G, D, {phase name: fn() that runs one training step of that phase on (real, c, z)}).

    The same constructor arguments as ours (our configs use NVlabs' names); the D's
    Freeze-D count is their `block_kwargs.freeze_layers` too.
    """
    networks_stylegan2, networks_stylegan3, loss_module = import_official(directory)
    family = networks_stylegan3 if config.generator_family == "stylegan3" else networks_stylegan2
    G = family.Generator(**G_kwargs).train().requires_grad_(False).to(device)
    D = networks_stylegan2.Discriminator(**D_kwargs).train().requires_grad_(False).to(device)
    loss = loss_module.StyleGAN2Loss(device=device, G=G, D=D, r1_gamma=config.gamma,
                                     style_mixing_prob=config.style_mixing_prob, pl_weight=config.pl_weight,
                                     blur_init_sigma=config.blur_init_sigma, blur_fade_kimg=config.blur_fade_kimg)
    regularise_G = config.pl_weight > 0 and config.G_reg_interval
    G_opt = optimizer(G.parameters(), config.glr, config.G_reg_interval if regularise_G else None)
    D_opt = optimizer(D.parameters(), config.dlr, config.D_reg_interval)

    def phase(name, module, opt, gain):
        def run(real_img, c, z):
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=name, real_img=real_img, real_c=c, gen_z=z, gen_c=c, gain=gain, cur_nimg=0)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()

        return run

    phases = {"G_main": phase("Gmain", G, G_opt, 1), "D_main": phase("Dmain", D, D_opt, 1),
              "D_r1": phase("Dreg", D, D_opt, config.D_reg_interval)}
    if regularise_G:
        phases["G_pl"] = phase("Greg", G, G_opt, config.G_reg_interval)
    return G, D, phases
