"""The custom ops of StyleGAN2/3 (NVlabs' torch_utils/ops): FIR resampling, bias + activation, modulated conv, filtered leaky ReLU."""
