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
from trainables.data import Dataset
from trainables.device import Placement
from trainables.ema import Ema
from trainables.errors import CheckpointError
from trainables.metrics import sample_stats
from trainables.optimizers import build as build_optimizer
from trainables.optimizers import set_rates
from trainables.registry import get_model
from trainables.schedules import CRITIC_SCHEDULES, adapt_lr_d, cooldown_scale
from trainables.trainer_base import TrainerBase
from trainables.vocabulary import columns


class Conditioned(torch.nn.Module):
    """A conditional generator as an unconditional sampler: sample i gets class i mod K, so every batch of
    samples covers the classes evenly (what the grids, sample statistics and mode counts read)."""

    def __init__(self, net: torch.nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net, self.num_classes = net, num_classes

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z, torch.arange(z.shape[0], device=z.device) % self.num_classes)


def _last_layer_transposed(generator: torch.nn.Module) -> bool:
    """Whether the generator's last convolution is a transposed one (guide 001 4.3's checkerboard source)."""
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    return bool(convs) and isinstance(convs[-1], torch.nn.ConvTranspose2d)


class Trainer(TrainerBase):
    def __init__(self, cfg: GanConfig, data: Dataset, place: Placement) -> None:
        spec = get_model(cfg.model)
        cfg = spec.prepare(cfg, data.num_modes)
        self.cfg, self.place = cfg, place
        self.family, self.columns = spec.family, columns(spec.family)
        dev = place.device
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's global RNG
            torch.manual_seed(cfg.seed)
            self.generator = spec.build_generator(cfg).to(dev, memory_format=place.memory_format)
            self.critic = spec.build_critic(cfg).to(dev, memory_format=place.memory_format)
        self.objective = spec.objective(cfg)
        # Dropout (dcgan's discriminator) draws from the global generator, which takes no seed argument: seed it
        # here and keep its state in checkpoints, or runs of one seed differ (guide 003 Step 1, seed control).
        torch.manual_seed(cfg.seed + 5)
        self.opt_g = build_optimizer(self.generator.parameters(), cfg.learning_rate_g, cfg)
        self.opt_d = build_optimizer(self.critic.parameters(), cfg.learning_rate_d, cfg)
        self.lr_d = cfg.learning_rate_d  # moves each epoch when ADAPTIVE_LR_D is on
        self.ema = Ema(self.generator, cfg.ema_decay) if cfg.ema_decay is not None else None
        self.labels = data.labels.to(dev) if spec.conditional else None  # class of each sample (cgan)
        self._init_data(cfg, data, place)
        self.transposed_output = _last_layer_transposed(self.generator)
        self.schedule = CRITIC_SCHEDULES[cfg.critic_schedule]
        self.epoch = 0  # epochs completed
        self.critic_steps = 0
        self.generator_steps = 0

    # ----- one epoch -------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        start = time.perf_counter()
        dev = self.place.device
        critic_sums = {k: torch.zeros((), device=dev) for k in self.objective.critic_metrics}
        gen_sums = {k: torch.zeros((), device=dev) for k in self.objective.generator_metrics}
        n_critic = n_gen = seen = 0
        self._epoch_rates()
        for i, index in enumerate(self._batches()):
            real, labels = self._real_batch(index), self._labels(index)
            seen += real.shape[0]
            if i % self.cfg.d_train_ratio == 0:  # guide 004's D_TRAIN_RATIO: the critic trains every N batches
                self._add(critic_sums, self._critic_step(real, labels))
                self.critic_steps += 1
                n_critic += 1
                if not self.schedule(n_critic - 1, self.critic_steps, self.cfg.n_critic):
                    continue
            self._add(gen_sums, self._generator_step(real.shape[0]))
            n_gen += 1
        self.generator_steps += n_gen
        self.epoch += 1
        row = self._loss_means(critic_sums, gen_sums, n_critic, n_gen)
        row.update(self.sample_metrics())
        row.update(self._timing(start, seen, self.opt_g.param_groups[0]["lr"], self.opt_d.param_groups[0]["lr"]))
        if self.cfg.adaptive_lr_d and n_critic:
            self.lr_d, _ = adapt_lr_d(self.lr_d, row["d_real"], row["d_fake"])
            set_rates(self.opt_d, self.lr_d, self.cfg)
        return self._epoch_row(row)

    def _epoch_rates(self) -> None:
        """This epoch's rates: the config's (LR_D: the adaptive one), scaled down in the LR_COOLDOWN epochs."""
        scale = cooldown_scale(self.epoch, self.cfg.num_epochs, self.cfg.lr_cooldown)
        set_rates(self.opt_g, self.cfg.learning_rate_g * scale, self.cfg)
        set_rates(self.opt_d, self.lr_d * scale, self.cfg)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.place.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.place.device.type, dtype=self.place.amp_dtype)

    def _labels(self, index: torch.Tensor) -> torch.Tensor | None:
        return None if self.labels is None else self.labels[index]

    def _random_labels(self, n: int) -> torch.Tensor | None:
        """Classes for the generator's step, drawn as often as the data holds them."""
        if self.labels is None:
            return None
        pick = torch.randint(self.labels.shape[0], (n,), device=self.place.device, generator=self.noise_rng)
        return self.labels[pick]

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(z) if labels is None else self.generator(z, labels)

    def _judge(self, labels: torch.Tensor | None):
        """The critic as a function of the samples alone (bound to their classes when conditional)."""
        return self.critic if labels is None else (lambda x: self.critic(x, labels))

    def _critic_step(self, real: torch.Tensor, labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        with self._autocast():
            with torch.no_grad():
                fake = self._generate(self._noise(real.shape[0]), labels)
            terms = self.objective.critic_terms(self._judge(labels), real, fake.to(real.dtype), self.noise_rng)
        self.opt_d.zero_grad(set_to_none=True)
        terms["d_loss"].backward()
        self.opt_d.step()
        return {k: v.detach() for k, v in terms.items()}

    def _generator_step(self, n: int) -> dict[str, torch.Tensor]:
        self.critic.requires_grad_(False)  # no critic weight gradients in the generator's step
        labels = self._random_labels(n)
        with self._autocast():
            terms = self.objective.generator_terms(self._judge(labels), self._generate(self._noise(n), labels),
                                                   self.noise_rng)
        self.opt_g.zero_grad(set_to_none=True)
        terms["g_loss"].backward()
        self.opt_g.step()
        self.critic.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.generator)
        return {k: v.detach() for k, v in terms.items()}

    @staticmethod
    def _add(sums: dict[str, torch.Tensor], terms: dict[str, torch.Tensor]) -> None:
        for key, value in terms.items():
            sums[key] += value

    def _loss_means(self, critic_sums: dict[str, torch.Tensor], gen_sums: dict[str, torch.Tensor],
                    n_critic: int, n_gen: int) -> dict[str, float]:
        sums = {**critic_sums, **gen_sums}
        values = dict(zip(sums, torch.stack(list(sums.values())).tolist()))  # the epoch's one sync
        nan = float("nan")
        means = {k: values[k] / n_critic if n_critic else nan for k in critic_sums}
        means.update({k: values[k] / n_gen if n_gen else nan for k in gen_sums})
        means = self.objective.finish(means)
        return {k: means[k] for k in self.objective.metrics}

    # ----- samples -----------------------------------------------------------------------------------------
    @property
    def sampler(self) -> torch.nn.Module:
        """The network samples come from (the EMA generator where there is one), as a function of noise alone."""
        net = self.ema.model if self.ema is not None else self.generator
        return Conditioned(net, self.cfg.num_classes) if self.labels is not None else net

    @torch.no_grad()
    def samples(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Generated samples in float32 from the fixed noise (or the given one), in eval mode."""
        net = self.sampler
        was_training = net.training
        net.eval()
        out = net(self.fixed_noise if noise is None else noise).float()
        net.train(was_training)
        return out

    def extra_samples(self) -> dict[str, torch.Tensor]:
        """Grids besides the generator's, by name (none: one generator)."""
        return {}

    def sample_metrics(self) -> dict[str, float]:
        return sample_stats(self.samples(), self.reference, self.transposed_output)

    # ----- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "critic_steps": self.critic_steps, "generator_steps": self.generator_steps,
            "config": self.cfg.to_dict(),
            "generator": self.generator.state_dict(), "critic": self.critic.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": self._rng_state(), "lr_d": self.lr_d,
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
            saved_rate = float(state["config"].get("LEARNING_RATE_D", self.cfg.learning_rate_d))
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"checkpoint does not fit this model and config: {str(err)[:200]}") from None
        self._apply_rates(state.get("lr_d") if saved_rate == self.cfg.learning_rate_d else None)

    def load_weights(self, state: dict[str, Any]) -> None:
        """Only the generator (and its EMA) from a checkpoint: enough to sample, on any device."""
        try:
            self.generator.load_state_dict(state["generator"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] if state.get("ema") else state["generator"])
            self.epoch = int(state["epoch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"checkpoint does not fit this model and config: {str(err)[:200]}") from None

    def _apply_rates(self, saved_lr_d: float | None = None) -> None:
        """The config's rates on the optimisers. An adaptive LR_D continues from the checkpoint's value
        (`saved_lr_d`, None when the config changed LEARNING_RATE_D, as autofix does when it resumes)."""
        cfg = self.cfg
        self.lr_d = saved_lr_d if cfg.adaptive_lr_d and saved_lr_d is not None else cfg.learning_rate_d
        set_rates(self.opt_g, cfg.learning_rate_g, cfg)
        set_rates(self.opt_d, self.lr_d, cfg)
