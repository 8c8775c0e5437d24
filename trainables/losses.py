"""GAN objectives. Each owns its critic and generator losses; the training loop only sequences them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class CriticTerms:
    loss: torch.Tensor  # what the critic minimises
    d_real: torch.Tensor  # mean critic score on real data
    d_fake: torch.Tensor  # mean critic score on generated data
    gp: torch.Tensor  # gradient penalty before its weight
    grad_norm: torch.Tensor  # mean critic gradient norm at the interpolates


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gulrajani et al. 2017: mean((||grad D(x_hat)|| - 1)^2) at per-sample random interpolates.

    Works for any sample shape (images or points). The norm is taken in float32 even under autocast.
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, device=real.device, generator=generator, dtype=real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)  # (B,)
    return ((norm - 1) ** 2).mean(), norm.mean()


@dataclasses.dataclass(frozen=True)
class WganGp:
    """WGAN-GP: critic loss D(fake) - D(real) + lambda * GP; generator loss -D(fake)."""

    lambda_gp: float

    def critic_terms(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> CriticTerms:
        d_real = critic(real).float().mean()
        d_fake = critic(fake).float().mean()
        gp, grad_norm = gradient_penalty(critic, real, fake, generator)
        return CriticTerms(d_fake - d_real + self.lambda_gp * gp, d_real, d_fake, gp, grad_norm)

    def generator_loss(self, critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return -critic(fake).float().mean()
