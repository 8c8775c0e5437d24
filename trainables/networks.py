"""What each registered model builds in torch: its generator, its critic and its objective (loss object).

The registry (trainables.registry) holds what a model is as plain data; this table holds how it is built, so
the diagnosis core and the commands can read the registry without importing torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import nn

from trainables.config import GanConfig
from trainables.losses import Bce, WganGp
from trainables.nets import cgan, dcgan, integrated_critics, integrated_generators, toy2d, wgan_large, wgan_small


def _gan_trainer(cfg: GanConfig, data: Any, place: Any) -> Any:
    from trainables.trainer import Trainer  # imported when a run starts: it imports the registry

    return Trainer(cfg, data, place)


def _integrated_trainer(cfg: GanConfig, data: Any, place: Any) -> Any:
    from trainables.integrated_trainer import IntegratedTrainer

    return IntegratedTrainer(cfg, data, place)


def _integrated_parts(cfg: GanConfig) -> dict[str, nn.Module]:
    from trainables.integrated_trainer import build_networks

    return build_networks(cfg)


@dataclasses.dataclass(frozen=True)
class Networks:
    generator: Callable[[GanConfig], nn.Module]
    critic: Callable[[GanConfig], nn.Module]
    objective: Callable[[GanConfig], Any]  # config -> loss object with critic_terms / generator_loss
    trainer: Callable[[GanConfig, Any, Any], Any] = _gan_trainer  # (config, Dataset, Placement) -> its trainer
    parts: Callable[[GanConfig], dict[str, nn.Module]] | None = None  # every network by name; None: G and critic

    def build_parts(self, cfg: GanConfig) -> dict[str, nn.Module]:
        """Every network the model trains, by name (what `gantune train --dry-run` counts)."""
        if self.parts is not None:
            return self.parts(cfg)
        return {"generator": self.generator(cfg), "critic": self.critic(cfg)}


def _wgan_gp(cfg: GanConfig) -> WganGp:
    return WganGp(cfg.lambda_gp)


def _bce_mean(cfg: GanConfig) -> Bce:
    """Keras's camel GAN: the discriminator's loss is the mean of its real and fake halves."""
    return Bce(cfg.label_smoothing, cfg.noise_std, "mean")


def _bce_sum(cfg: GanConfig) -> Bce:
    """Guide 004's PyTorch project: the sum of the halves."""
    return Bce(cfg.label_smoothing, cfg.noise_std, "sum")


NETWORKS: dict[str, Networks] = {
    "wgan_small": Networks(wgan_small.build_generator, wgan_small.build_critic, _wgan_gp),
    "wgan_large": Networks(wgan_large.build_generator, wgan_large.build_critic, _wgan_gp),
    "toy2d": Networks(toy2d.build_generator, toy2d.build_critic, _wgan_gp),
    "dcgan": Networks(dcgan.build_generator, dcgan.build_critic, _bce_mean),
    "cgan": Networks(cgan.build_generator, cgan.build_critic, _bce_sum),
    # guide 002: a style generator and an NCA against one discriminator, and a transformer critic; its own loop
    "integrated": Networks(integrated_generators.build_generator, integrated_critics.build_discriminator, _bce_sum,
                           _integrated_trainer, _integrated_parts),
}
