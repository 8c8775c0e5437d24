"""GAN objectives. Each owns its critic and generator losses and names the per-epoch metrics they produce; the
training loop only sequences them and averages what they return.

An objective's `critic_terms` returns scalar tensors keyed by metric name, `d_loss` being what the critic
minimises; `generator_terms` returns `g_loss` (what the generator minimises) and any extras; `finish` derives
the epoch's remaining metrics from the means. `family` names the diagnosis rules and remedy ladder that apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F

from trainables.vocabulary import BCE, WGAN

Critic = Callable[[torch.Tensor], torch.Tensor]  # images or points -> one score (or logit) per sample
Terms = dict[str, torch.Tensor]


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gulrajani et al. 2017: mean((||grad D(x_hat)|| - 1)^2) at per-sample random interpolates.

    Works for any sample shape (images or points). The norm is taken in float32 even under autocast, per score:
    a packing critic (PacGAN) scores groups of samples, and the norm covers each group's samples together.
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, device=real.device, generator=generator, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.float().reshape(scores.shape[0], -1).norm(dim=1)  # (B / PACK,)
    return ((norm - 1) ** 2).mean(), norm.mean()


@dataclasses.dataclass(frozen=True)
class WganGp:
    """WGAN-GP: critic loss D(fake) - D(real) + lambda * GP; generator loss -D(fake)."""

    lambda_gp: float
    family = WGAN
    critic_metrics = ("d_loss", "d_real", "d_fake", "gp", "grad_norm")
    generator_metrics = ("g_loss",)
    metrics = ("d_loss", "g_loss", "d_real", "d_fake", "gp", "grad_norm", "w_dist")  # losses.csv's loss columns

    def critic_terms(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> Terms:
        d_real = critic(real).float().mean()
        d_fake = critic(fake).float().mean()
        gp, grad_norm = gradient_penalty(critic, real, fake, generator)
        return {"d_loss": d_fake - d_real + self.lambda_gp * gp, "d_real": d_real, "d_fake": d_fake, "gp": gp,
                "grad_norm": grad_norm}

    def generator_terms(self, critic: Critic, fake: torch.Tensor, generator: torch.Generator) -> Terms:
        return {"g_loss": -critic(fake).float().mean()}

    @staticmethod
    def finish(means: dict[str, float]) -> dict[str, float]:
        return {**means, "w_dist": means["d_real"] - means["d_fake"]}


@dataclasses.dataclass(frozen=True)
class Bce:
    """The standard (non-saturating) GAN: a sigmoid discriminator trained with binary cross-entropy.

    `label_smoothing` makes the real targets 1 - s and `noise_std` adds instance noise to every input the
    discriminator sees (guide 004's solutions 2 and 3). `reduction` "mean" averages the real and fake halves
    of the discriminator's loss like Keras's camel GAN (healthy near ln 2, guide 003); "sum" adds them like
    guide 004's PyTorch project (healthy 0.5-1.5). Accuracies are at the 0.5 threshold: d_acc_real the share
    of reals called real, d_acc_fake of fakes called fake, g_acc the share of fakes called real.
    """

    label_smoothing: float = 0.0
    noise_std: float = 0.0
    reduction: str = "mean"
    family = BCE
    critic_metrics = ("d_loss", "d_loss_real", "d_loss_fake", "d_real", "d_fake", "d_acc_real", "d_acc_fake")
    generator_metrics = ("g_loss", "g_acc")
    metrics = ("d_loss", "g_loss", "d_real", "d_fake", "d_loss_real", "d_loss_fake", "d_acc", "d_acc_real",
               "d_acc_fake", "g_acc")

    def _logits(self, critic: Critic, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        return critic(x).float().flatten()

    def critic_terms(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> Terms:
        real_logits = self._logits(critic, real, generator)
        fake_logits = self._logits(critic, fake, generator)
        loss_real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits,
                                                                                   1.0 - self.label_smoothing))
        loss_fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        weight = 0.5 if self.reduction == "mean" else 1.0
        p_real, p_fake = torch.sigmoid(real_logits.detach()), torch.sigmoid(fake_logits.detach())
        return {"d_loss": weight * (loss_real + loss_fake), "d_loss_real": loss_real, "d_loss_fake": loss_fake,
                "d_real": p_real.mean(), "d_fake": p_fake.mean(),
                "d_acc_real": (p_real > 0.5).float().mean(), "d_acc_fake": (p_fake < 0.5).float().mean()}

    def generator_terms(self, critic: Critic, fake: torch.Tensor, generator: torch.Generator) -> Terms:
        logits = self._logits(critic, fake, generator)
        loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return {"g_loss": loss, "g_acc": (logits.detach() > 0).float().mean()}

    @staticmethod
    def finish(means: dict[str, float]) -> dict[str, float]:
        return {**means, "d_acc": 0.5 * (means["d_acc_real"] + means["d_acc_fake"])}
