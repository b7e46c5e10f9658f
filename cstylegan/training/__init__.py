"""Training one StyleGAN2/3: the loop, the losses, ADA, and what keeps long runs safe."""
