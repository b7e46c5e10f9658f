"""The generator families, under the names that snapshots record (`G_family`)."""

from cstylegan.networks.stylegan2 import Generator as StyleGAN2Generator
from cstylegan.networks.stylegan3 import Generator as StyleGAN3Generator

GENERATORS = {"stylegan2": StyleGAN2Generator, "stylegan3": StyleGAN3Generator}
