"""The GAN training loop: plain PyTorch that knows nothing of Ray, MLflow or files.

`Trainer.train_epoch()` runs one pass over the data and returns the per-epoch metrics dict; `state_dict()`
and `load_state_dict()` capture everything needed to continue bit-for-bit (networks, optimisers, EMA,
counters and every random generator). Losses are summed on the device and read once per epoch.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch

from trainables.config import GanConfig
from trainables.data import Dataset, augment, to_float
from trainables.device import Placement
from trainables.ema import Ema
from trainables.errors import CheckpointError
from trainables.metrics import LOSS_METRICS, Reference, reference_stats, sample_stats
from trainables.quality import QualityReference, quality, reference
from trainables.registry import get_model
from trainables.schedules import CRITIC_SCHEDULES

_CRITIC_SUMS = ("d_loss", "d_real", "d_fake", "gp", "grad_norm")


class Trainer:
    def __init__(self, cfg: GanConfig, data: Dataset, place: Placement) -> None:
        spec = get_model(cfg.model)
        self.cfg, self.place, self.images = cfg, place, data.kind == "image"
        self.background = data.background
        self.dataset = data  # the real data the quality metrics compare with
        dev = place.device
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's global RNG
            torch.manual_seed(cfg.seed)
            self.generator = spec.build_generator(cfg).to(dev, memory_format=place.memory_format)
            self.critic = spec.build_critic(cfg).to(dev, memory_format=place.memory_format)
        self.objective = spec.objective(cfg)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), cfg.learning_rate_g, (cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.critic.parameters(), cfg.learning_rate_d, (cfg.beta1, cfg.beta2))
        self.ema = Ema(self.generator, cfg.ema_decay) if cfg.ema_decay is not None else None
        self.data = data.tensor.to(dev)  # the whole dataset lives on the device: no loader, no copies per step
        self.data_rng = torch.Generator(dev).manual_seed(cfg.seed + 1)  # order and augmentation
        self.noise_rng = torch.Generator(dev).manual_seed(cfg.seed + 2)  # latents and GP interpolation
        self.fixed_noise = torch.randn(cfg.num_samples, cfg.latent_dim, device=dev,
                                       generator=torch.Generator(dev).manual_seed(cfg.seed + 3))
        self.reference = self._reference()
        self._quality_ref: QualityReference | None = None  # built on the first quality evaluation
        self.schedule = CRITIC_SCHEDULES[cfg.critic_schedule]
        self.epoch = 0  # epochs completed
        self.critic_steps = 0
        self.generator_steps = 0

    # ----- one epoch -------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        start = time.perf_counter()
        sums = {k: torch.zeros((), device=self.place.device) for k in _CRITIC_SUMS + ("g_loss",)}
        n_critic = n_gen = seen = 0
        for i, index in enumerate(self._batches()):
            real = self._real_batch(index)
            self._add(sums, self._critic_step(real))
            self.critic_steps += 1
            n_critic, seen = n_critic + 1, seen + real.shape[0]
            if self.schedule(i, self.critic_steps, self.cfg.n_critic):
                sums["g_loss"] += self._generator_step(real.shape[0])
                n_gen += 1
        self.generator_steps += n_gen
        self.epoch += 1
        row = self._loss_means(sums, n_critic, n_gen)
        row.update(self.sample_metrics())
        elapsed = time.perf_counter() - start
        row.update(lr_g=self.opt_g.param_groups[0]["lr"], lr_d=self.opt_d.param_groups[0]["lr"],
                   epoch_time_s=elapsed, images_per_s=seen / elapsed)
        if self.quality_due(self.epoch - 1):
            start = time.perf_counter()
            row.update(self.quality())
            row["quality_time_s"] = time.perf_counter() - start
        return {"epoch": float(self.epoch - 1), **row}

    def quality_due(self, epoch: int) -> bool:
        """Quality is measured every QUALITY_EVERY epochs and after the last one."""
        every = self.cfg.quality_every
        return every > 0 and ((epoch + 1) % every == 0 or epoch == self.cfg.num_epochs - 1)

    def _batches(self) -> list[torch.Tensor]:
        n, b = self.data.shape[0], self.cfg.batch_size
        order = torch.randperm(n, device=self.place.device, generator=self.data_rng)
        if n <= b:
            return [order]
        return list(order[: n - n % b].view(-1, b))  # drop the ragged last batch: GP and BN want full batches

    def _real_batch(self, index: torch.Tensor) -> torch.Tensor:
        batch = self.data[index]
        if not self.images:
            return batch
        cfg = self.cfg
        batch = augment(to_float(batch), cfg.horizontal_flip_prob, cfg.rotation_degrees, cfg.color_jitter,
                        self.background, self.data_rng)
        return batch.contiguous(memory_format=self.place.memory_format)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.place.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.place.device.type, dtype=self.place.amp_dtype)

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, device=self.place.device, generator=self.noise_rng)

    def _critic_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        with self._autocast():
            with torch.no_grad():
                fake = self.generator(self._noise(real.shape[0]))
            terms = self.objective.critic_terms(self.critic, real, fake.to(real.dtype), self.noise_rng)
        self.opt_d.zero_grad(set_to_none=True)
        terms.loss.backward()
        self.opt_d.step()
        return {"d_loss": terms.loss.detach(), "d_real": terms.d_real.detach(), "d_fake": terms.d_fake.detach(),
                "gp": terms.gp.detach(), "grad_norm": terms.grad_norm.detach()}

    def _generator_step(self, n: int) -> torch.Tensor:
        self.critic.requires_grad_(False)  # no critic weight gradients in the generator's step
        with self._autocast():
            loss = self.objective.generator_loss(self.critic, self.generator(self._noise(n)))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.critic.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.generator)
        return loss.detach()

    @staticmethod
    def _add(sums: dict[str, torch.Tensor], terms: dict[str, torch.Tensor]) -> None:
        for key, value in terms.items():
            sums[key] += value

    @staticmethod
    def _loss_means(sums: dict[str, torch.Tensor], n_critic: int, n_gen: int) -> dict[str, float]:
        keys = list(sums)
        values = dict(zip(keys, torch.stack([sums[k] for k in keys]).tolist()))  # the epoch's one sync
        means = {k: values[k] / max(n_critic, 1) for k in _CRITIC_SUMS}
        means["g_loss"] = values["g_loss"] / n_gen if n_gen else float("nan")
        means["w_dist"] = means["d_real"] - means["d_fake"]
        return {k: means[k] for k in LOSS_METRICS}

    # ----- samples -----------------------------------------------------------------------------------------
    @property
    def sampler(self) -> torch.nn.Module:
        """The network samples come from: the EMA generator where there is one."""
        return self.ema.model if self.ema is not None else self.generator

    @torch.no_grad()
    def samples(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Generated samples in float32 from the fixed noise (or the given one), in eval mode."""
        net = self.sampler
        was_training = net.training
        net.eval()
        out = net(self.fixed_noise if noise is None else noise).float()
        net.train(was_training)
        return out

    def sample_metrics(self) -> dict[str, float]:
        return sample_stats(self.samples(), self.reference)

    @property
    def quality_reference(self) -> QualityReference:
        """The real side of the quality metrics, built on first use (it may train the dataset's classifier)."""
        if self._quality_ref is None:
            self._quality_ref = reference(self.dataset, self.place.device, self.cfg.seed)
        return self._quality_ref

    def quality(self, n_samples: int | None = None) -> dict[str, float]:
        """The quality metrics of the sampler against the training data (trainables.quality)."""
        n = self.cfg.quality_samples if n_samples is None else n_samples
        return quality(self.sampler, self.dataset, self.cfg.latent_dim, n, self.quality_reference,
                       self.place.device, self.cfg.seed)

    def _reference(self) -> Reference:
        n = min(self.cfg.num_samples, self.data.shape[0])
        pick = torch.randperm(self.data.shape[0], generator=torch.Generator().manual_seed(self.cfg.seed + 4))[:n]
        real = self.data[pick.to(self.place.device)]
        return reference_stats(to_float(real) if self.images else real)

    # ----- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "critic_steps": self.critic_steps, "generator_steps": self.generator_steps,
            "config": self.cfg.to_dict(),
            "generator": self.generator.state_dict(), "critic": self.critic.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": {"data": self.data_rng.get_state(), "noise": self.noise_rng.get_state()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint; the learning rates and betas of the current config win over the saved ones."""
        try:
            self.generator.load_state_dict(state["generator"])
            self.critic.load_state_dict(state["critic"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] if state.get("ema") else state["generator"])
            self._restore_rngs(state["rng"])
            self.epoch, self.critic_steps = int(state["epoch"]), int(state["critic_steps"])
            self.generator_steps = int(state["generator_steps"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"checkpoint does not fit this model and config: {str(err)[:200]}") from None
        self._apply_rates()

    def load_weights(self, state: dict[str, Any]) -> None:
        """Only the generator (and its EMA) from a checkpoint: enough to sample, on any device."""
        try:
            self.generator.load_state_dict(state["generator"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] if state.get("ema") else state["generator"])
            self.epoch = int(state["epoch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"checkpoint does not fit this model and config: {str(err)[:200]}") from None

    def _restore_rngs(self, rng: dict[str, torch.Tensor]) -> None:
        try:
            self.data_rng.set_state(rng["data"])
            self.noise_rng.set_state(rng["noise"])
        except RuntimeError:
            raise CheckpointError(f"the checkpoint's random state comes from another device type than "
                                  f"{self.place.device.type}; resume on the device it was written on") from None

    def _apply_rates(self) -> None:
        cfg = self.cfg
        for opt, lr in ((self.opt_g, cfg.learning_rate_g), (self.opt_d, cfg.learning_rate_d)):
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, (cfg.beta1, cfg.beta2)
