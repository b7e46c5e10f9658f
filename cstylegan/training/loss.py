"""The StyleGAN2 objective: non-saturating logistic loss, lazy R1 and path-length terms.

Each phase returns the loss to back-propagate (already averaged over the batch and
multiplied by its lazy-regularisation gain) and the detached numbers to log. The loop
decides when each phase runs; this file only says what each one computes.
"""

import numpy as np
import torch
import torch.nn.functional as F

from cstylegan.networks.mapping import blend_labels
from cstylegan.networks.ops.upfirdn2d import filter2d


class StyleGAN2Loss:
    def __init__(
        self,
        G,
        D,
        augment_pipe=None,
        r1_gamma=10.0,
        style_mixing_prob=0.9,
        pl_weight=2.0,
        pl_batch_shrink=2,
        pl_decay=0.01,
        blur_init_sigma=0.0,
        blur_fade_kimg=0.0,
        transition_kimg=None,
        ds_weight=0.0,
        ds_tau=0.5,
        ds_pool=4,
    ):
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = r1_gamma
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight = pl_weight
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.pl_mean = None  # running mean of path lengths, created on first use
        self.blur_init_sigma = blur_init_sigma
        self.blur_fade_kimg = blur_fade_kimg
        self.transition_kimg = transition_kimg  # (start, end): labels fade in between these kimg
        self.ds_weight, self.ds_tau, self.ds_pool = ds_weight, ds_tau, ds_pool
        self.cur_nimg = 0  # set by the training loop; drives the blur fade-out and the label fade-in

    def blur_sigma(self) -> float:
        """StyleGAN3-R blurs every image D sees, fading linearly to none over blur_fade_kimg."""
        if self.blur_fade_kimg <= 0:
            return 0.0
        return max(1 - self.cur_nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    def label_weight(self) -> float:
        """How much G and D see of the labels: 0 before the transition's start kimg, rising
        linearly to 1 at its end (transitional training); 1 throughout without one."""
        if self.transition_kimg is None:
            return 1.0
        start, end = self.transition_kimg
        return min(max((self.cur_nimg / 1e3 - start) / (end - start), 0.0), 1.0)

    def run_G(self, z, c, update_emas=False):
        """Map and synthesise; with probability `style_mixing_prob` the ws after a random
        cutoff come from a second z of the same class."""
        weight = self.label_weight()
        ws = self.G.mapping(z, c, update_emas=update_emas, label_weight=weight)
        if self.style_mixing_prob > 0:
            num_ws = ws.shape[1]
            cutoff = int(torch.randint(1, num_ws, []).item()) if num_ws > 1 else num_ws
            if torch.rand([]).item() >= self.style_mixing_prob:
                cutoff = num_ws
            if cutoff < num_ws:
                mixed = self.G.mapping(torch.randn_like(z), c, update_emas=False, label_weight=weight)
                ws = torch.cat([ws[:, :cutoff], mixed[:, cutoff:]], dim=1)
        img = self.G.synthesis(ws, update_emas=update_emas)
        return img, ws

    def run_D(self, img, c):
        sigma = self.blur_sigma()
        radius = int(np.floor(sigma * 3))
        if radius > 0:
            taps = torch.arange(-radius, radius + 1, device=img.device, dtype=torch.float32).div(sigma).square().neg().exp2()
            img = filter2d(img, taps / taps.sum())
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, blend_labels(c, self.label_weight()))

    def G_main(self, gen_z, gen_c):
        """-log sigmoid(D(G(z))): the non-saturating generator loss; with ds_weight, minus the
        weighted diversity term (the second half of the batch then takes the first half's labels)."""
        half = len(gen_z) // 2
        if self.ds_weight > 0:
            gen_c = torch.cat([gen_c[:half], gen_c[:half], gen_c[2 * half:]])
        gen_img, _ = self.run_G(gen_z, gen_c)
        gen_logits = self.run_D(gen_img, gen_c)
        loss = F.softplus(-gen_logits).mean()
        stats = {"Loss/G/loss": loss.detach(), "Loss/scores/fake": gen_logits.mean().detach()}
        if self.ds_weight > 0:
            term = self.diversity_term(gen_img[:half], gen_img[half:2 * half], gen_z[:half], gen_z[half:2 * half])
            loss = loss - self.ds_weight * term
            stats["Loss/G/ds"] = term.detach()
        return loss, stats

    def diversity_term(self, img_a, img_b, z_a, z_b) -> torch.Tensor:
        """Diversity-sensitive term (Yang et al. 2019; Mao et al. 2019): how far apart two fakes
        of one class are per unit of latent distance, on images average-pooled by ds_pool (so
        that shapes and colours count, not pixel noise), capped at ds_tau per pair, averaged."""
        pooled_a, pooled_b = F.avg_pool2d(img_a, self.ds_pool), F.avg_pool2d(img_b, self.ds_pool)
        ratio = (pooled_a - pooled_b).abs().mean(dim=[1, 2, 3]) / (z_a - z_b).abs().mean(dim=1)
        return ratio.clamp(max=self.ds_tau).mean()

    def G_pl(self, gen_z, gen_c, gain):
        """Path-length regularisation on a smaller batch: |J^T y| should stay constant."""
        batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:batch], gen_c[:batch])
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        (pl_grads,) = torch.autograd.grad((gen_img * pl_noise).sum(), gen_ws, create_graph=True)
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
        if self.pl_mean is None:
            self.pl_mean = torch.zeros([], device=gen_z.device)
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        # The `gen_img * 0` term keeps every synthesis parameter in the graph.
        loss = (gen_img[:, 0, 0, 0] * 0 + pl_penalty * self.pl_weight).mean() * gain
        return loss, {"Loss/pl_penalty": pl_penalty.mean().detach()}

    def D_main(self, real_img, real_c, gen_z, gen_c):
        """-log(1 - sigmoid(D(G(z)))) - log sigmoid(D(x)); G runs without gradients."""
        with torch.no_grad():
            gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
        gen_logits = self.run_D(gen_img, gen_c)
        real_logits = self.run_D(real_img, real_c)
        loss = F.softplus(gen_logits).mean() + F.softplus(-real_logits).mean()
        stats = {
            "Loss/D/loss": loss.detach(),
            "Loss/scores/real": real_logits.mean().detach(),
            "Loss/signs/real": real_logits.sign().mean().detach(),
        }
        return loss, stats

    def D_r1(self, real_img, real_c, gain):
        """R1: gamma/2 * |grad_x D(x)|^2 on real images."""
        real_img = real_img.detach().requires_grad_(True)
        real_logits = self.run_D(real_img, real_c)
        (r1_grads,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
        r1_penalty = r1_grads.square().sum([1, 2, 3])
        loss = (real_logits * 0 + r1_penalty * (self.r1_gamma / 2)).mean() * gain
        return loss, {"Loss/r1_penalty": r1_penalty.mean().detach()}
