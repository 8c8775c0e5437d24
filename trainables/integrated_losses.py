"""The integrated system's losses (guide 002's fixed trainer, issue 26), as small pure functions of the networks.

Discriminator: BCE with real targets 1 - LABEL_SMOOTHING (0.9) against the style generator's and the NCA's fakes,
the three halves summed, plus LAMBDA_GP x the gradient penalty at interpolates between reals and each kind of fake.
Generator and NCA: non-saturating BCE plus FEATURE_MATCHING x the MSE between the discriminator's channel-normalised
feature maps of their fakes and of the reals (batch means). The transformer critic: BCE on its CLS score against
the style generator's fakes (its "critic" phase), or the MSE of the image its imitator head paints from a real
image against that image (its "imitator" phase).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainables.losses import gradient_penalty

Terms = dict[str, torch.Tensor]


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


def discriminator_terms(disc: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, nca_fake: torch.Tensor,
                        smoothing: float, lambda_gp: float, rng: torch.Generator) -> Terms:
    """d_loss and its parts; `real` already carries the real-image noise, if any."""
    real_logits, fake_logits, nca_logits = disc(real), disc(fake), disc(nca_fake)
    loss_real, loss_fake, loss_nca = bce(real_logits, 1.0 - smoothing), bce(fake_logits, 0.0), bce(nca_logits, 0.0)
    gp = real.new_zeros(())
    if lambda_gp > 0:
        gp = gradient_penalty(disc, real, fake, rng)[0] + gradient_penalty(disc, real, nca_fake, rng)[0]
    p_real, p_fake, p_nca = (torch.sigmoid(x.detach().float()) for x in (real_logits, fake_logits, nca_logits))
    return {"d_loss": loss_real + loss_fake + loss_nca + lambda_gp * gp, "d_loss_real": loss_real,
            "d_loss_fake": loss_fake, "d_loss_fake_nca": loss_nca, "gp": gp.detach(), "d_real": p_real.mean(),
            "d_fake": p_fake.mean(), "d_fake_nca": p_nca.mean(), "d_acc_real": (p_real > 0.5).float().mean(),
            "d_acc_fake": (p_fake < 0.5).float().mean(), "d_acc_fake_nca": (p_nca < 0.5).float().mean()}


def normalised(features: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each feature map normalised over its channels, then averaged over the batch: (C, H, W) each."""
    return [F.normalize(f.float(), dim=1).mean(dim=0) for f in features]


def feature_matching(fake_features: list[torch.Tensor], real_means: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([F.mse_loss(f, r) for f, r in zip(normalised(fake_features), real_means)]).sum()


def generator_terms(disc: torch.nn.Module, fake: torch.Tensor, real_means: list[torch.Tensor], weight: float
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, its parts: the BCE, the feature-matching term and the share of fakes called real) of one generator."""
    logits, features = disc.features(fake)
    fm, adversarial = feature_matching(features, real_means), bce(logits, 1.0)
    parts = {"bce": adversarial.detach(), "fm": fm.detach(), "acc": (logits.detach() > 0).float().mean()}
    return adversarial + weight * fm, parts


def transformer_critic_loss(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                            smoothing: float) -> torch.Tensor:
    return bce(critic(real), 1.0 - smoothing) + bce(critic(fake), 0.0)


def imitator_loss(critic: torch.nn.Module, real: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(critic.paint(real).float(), real.float())
