"""The generator families and discriminator backbones, under the names that snapshots record
(`G_family`, `D_backbone`) and --dbackbone takes."""

from cstylegan.networks.discriminator import Discriminator
from cstylegan.networks.stylegan2 import Generator as StyleGAN2Generator
from cstylegan.networks.stylegan3 import Generator as StyleGAN3Generator
from cstylegan.networks.vit_discriminator import VitDiscriminator

GENERATORS = {"stylegan2": StyleGAN2Generator, "stylegan3": StyleGAN3Generator}
DISCRIMINATORS = {"resnet": Discriminator, "vit": VitDiscriminator}
