"""The integrated system's training loop (guide 002): a style generator and an NCA against one discriminator, and
a transformer critic trained beside them on its own schedule. Plain PyTorch, no Ray, no files.

It has the interface of trainables.trainer.Trainer that the run directory, the CLI and the sweep's trial use
(`train_epoch`, `samples`, `extra_samples`, `quality`, `state_dict` / `load_state_dict`, `load_weights`, `cfg`,
`epoch`, `columns`, `family`), shares its real-data side (trainables.trainer_base), and logs INTEGRATED_COLUMNS.
Per batch: the discriminator steps as D_SCHEDULE says, then the generator and the NCA take one step each, then the
transformer as its phase says (T_SCHEDULE).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from trainables.config import GanConfig
from trainables.data import Dataset
from trainables.device import Placement
from trainables.errors import CheckpointError
from trainables.integrated_losses import (
    bce,
    discriminator_terms,
    generator_terms,
    imitator_loss,
    normalised,
    transformer_critic_loss,
)
from trainables.integrated_schedules import D_SCHEDULES, T_SCHEDULES, Phase
from trainables.integrated_score import guide_score
from trainables.metrics import sample_stats
from trainables.nets.integrated_critics import build_discriminator, build_transformer
from trainables.nets.integrated_generators import NCA_STEPS, SAMPLE_STEPS, build_generator, build_nca
from trainables.optimizers import build as build_optimizer
from trainables.registry import get_model
from trainables.trainer_base import TrainerBase
from trainables.vocabulary import GUIDE_SCORE, INTEGRATED_COLUMNS, INTEGRATED_LOSS_METRICS, NCA_PREFIX

RATES = {"generator": "learning_rate_g", "nca": "learning_rate_nca", "discriminator": "learning_rate_d",
         "transformer": "learning_rate_t"}  # each network's optimiser and the config field of its rate
T_LOSSES = {"critic": lambda t, real, fake, s: transformer_critic_loss(t, real, fake, s),
            "imitator": lambda t, real, fake, s: imitator_loss(t, real)}


def build_networks(cfg: GanConfig) -> dict[str, nn.Module]:
    """The four networks by name (what `--dry-run` counts)."""
    return {"generator": build_generator(cfg), "nca": build_nca(cfg), "discriminator": build_discriminator(cfg),
            "transformer": build_transformer(cfg)}


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No weight gradients for these modules inside (the other networks' steps)."""
    for m in modules:
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m in modules:
            m.requires_grad_(True)


class IntegratedTrainer(TrainerBase):
    def __init__(self, cfg: GanConfig, data: Dataset, place: Placement) -> None:
        spec = get_model(cfg.model)
        self.cfg, self.place = spec.prepare(cfg, data.num_modes), place
        self.family, self.columns = spec.family, INTEGRATED_COLUMNS
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.nets = nn.ModuleDict(build_networks(self.cfg)).to(place.device, memory_format=place.memory_format)
        self.generator, self.critic = self.nets["generator"], self.nets["discriminator"]
        torch.manual_seed(cfg.seed + 5)  # dropout and the generator's per-pixel noise draw from the global RNG
        self.opts = {name: build_optimizer(self.nets[name].parameters(), getattr(cfg, field), cfg)
                     for name, field in RATES.items()}
        self._init_data(self.cfg, data, place)
        self.epoch = self.critic_steps = self.generator_steps = 0

    # ----- one epoch -------------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        start, seen = time.perf_counter(), 0
        sums: dict[str, list[torch.Tensor]] = {}
        phase = T_SCHEDULES[self.cfg.t_schedule](self.epoch)
        steps = D_SCHEDULES[self.cfg.d_schedule]
        for i, index in enumerate(self._batches()):
            real = self._real_batch(index)
            seen += real.shape[0]
            for _ in range(steps(self.epoch, i)):
                self._add(sums, self._discriminator_step(real))
            terms, fake = self._generator_steps(real, phase)
            self._add(sums, {**terms, **self._transformer_step(real, fake, phase)})
        self.epoch += 1
        row = {**self._means(sums), "t_phase": float(phase.index), **self.sample_metrics()}
        row.update(self._timing(start, seen, self.cfg.learning_rate_g, self.cfg.learning_rate_d))
        return self._epoch_row(row)

    def _nca_fake(self, z: torch.Tensor) -> torch.Tensor:
        """The NCA grown from the generator's w (detached: the NCA's loss does not train the mapping network)."""
        with torch.no_grad():
            w = self.generator.style(z)
        low, high = NCA_STEPS
        steps = int(torch.randint(low, high + 1, (1,), device=self.place.device, generator=self.noise_rng))
        return self.nets["nca"](w, steps, self.noise_rng)

    def _update(self, name: str, loss: torch.Tensor) -> None:
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.nets[name].parameters(), self.cfg.grad_clip)
        opt.step()

    def _discriminator_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, z = self.cfg, self._noise(real.shape[0])
        if cfg.real_noise_std > 0:  # guide 002's text: noise on the real images only
            real = real + cfg.real_noise_std * torch.randn(real.shape, device=real.device, generator=self.noise_rng)
        with torch.no_grad():
            fake, nca_fake = self.generator(z), self._nca_fake(z)
        terms = discriminator_terms(self.critic, real, fake, nca_fake, cfg.label_smoothing, cfg.lambda_gp,
                                    self.noise_rng)
        self._update("discriminator", terms["d_loss"])
        self.critic_steps += 1
        return {k: v.detach() for k, v in terms.items()}

    def _generator_steps(self, real: torch.Tensor, phase: Phase) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One step of the generator and one of the NCA; (their terms, the generator's fakes, detached)."""
        cfg, z = self.cfg, self._noise(real.shape[0])
        with torch.no_grad():
            real_means = normalised(self.critic.features(real)[1])
        with frozen(self.critic, self.nets["transformer"]):
            fake = self.generator(z)
            g_loss, g = generator_terms(self.critic, fake, real_means, cfg.feature_matching)
            if phase.weight * cfg.t_integration > 0:  # the text's gradual integration
                g_loss = g_loss + phase.weight * cfg.t_integration * bce(self.nets["transformer"](fake), 1.0)
            self._update("generator", g_loss)
            nca_loss, n = generator_terms(self.critic, self._nca_fake(z), real_means, cfg.feature_matching)
            self._update("nca", nca_loss)
        self.generator_steps += 1
        return {"g_loss": g_loss.detach(), "g_bce": g["bce"], "feature_match": g["fm"], "g_acc": g["acc"],
                "nca_loss": nca_loss.detach(), "nca_bce": n["bce"], "nca_acc": n["acc"]}, fake.detach()

    def _transformer_step(self, real: torch.Tensor, fake: torch.Tensor, phase: Phase) -> dict[str, torch.Tensor]:
        if phase.loss is None:
            return {}
        critic, loss_of = self.nets["transformer"], T_LOSSES[phase.loss]
        if not phase.trains:
            with torch.no_grad():
                return {"t_loss": loss_of(critic, real, fake, self.cfg.label_smoothing)}
        loss = loss_of(critic, real, fake, self.cfg.label_smoothing)
        self._update("transformer", loss)
        return {"t_loss": loss.detach()}

    @staticmethod
    def _add(sums: dict[str, list[torch.Tensor]], terms: dict[str, torch.Tensor]) -> None:
        for key, value in terms.items():
            sums.setdefault(key, []).append(value.float())

    @staticmethod
    def _means(sums: dict[str, list[torch.Tensor]]) -> dict[str, float]:
        """Each term's mean over its steps, read in one sync; NaN for a term no step produced."""
        values = torch.stack([torch.stack(v).mean() for v in sums.values()]).tolist() if sums else []
        means = dict(zip(sums, values))
        nan = float("nan")
        means["d_acc"] = 0.5 * (means.get("d_acc_real", nan) + means.get("d_acc_fake", nan))
        return {k: means.get(k, nan) for k in INTEGRATED_LOSS_METRICS if k != "t_phase"}

    # ----- samples -----------------------------------------------------------------------------------------
    @property
    def sampler(self) -> nn.Module:
        """The network the quality metrics sample: the style generator."""
        return self.generator

    @torch.no_grad()
    def samples(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The style generator's samples from the fixed noise (or the given one), in eval mode."""
        return self._eval(lambda: self.generator(self.fixed_noise if noise is None else noise))

    @torch.no_grad()
    def nca_samples(self) -> torch.Tensor:
        """The NCA's samples: grown SAMPLE_STEPS steps from the fixed noise's w and a fixed seed layout."""
        gen = torch.Generator(self.place.device).manual_seed(self.cfg.seed + 6)
        return self._eval(lambda: self.nets["nca"](self.generator.style(self.fixed_noise), SAMPLE_STEPS, gen))

    def _eval(self, make: Any) -> torch.Tensor:
        was = self.nets.training
        self.nets.eval()
        out = make().float()
        self.nets.train(was)
        return out

    def extra_samples(self) -> dict[str, torch.Tensor]:
        """Grids besides the generator's, by name: the NCA's."""
        return {"nca": self.nca_samples()}

    def sample_metrics(self) -> dict[str, float]:
        g, n = self.samples(), self.nca_samples()
        out = {**sample_stats(g, self.reference), GUIDE_SCORE: float(guide_score(g))}
        nca = {**sample_stats(n, self.reference), GUIDE_SCORE: float(guide_score(n))}
        return {**out, **{NCA_PREFIX + k: v for k, v in nca.items()}}

    # ----- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "critic_steps": self.critic_steps, "generator_steps": self.generator_steps,
                "config": self.cfg.to_dict(), "generator": self.generator.state_dict(),
                "nets": self.nets.state_dict(), "opts": {k: o.state_dict() for k, o in self.opts.items()},
                "rng": self._rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint; the current config's rates win over the saved ones."""
        try:
            self.nets.load_state_dict(state["nets"])
            for name, opt in self.opts.items():
                opt.load_state_dict(state["opts"][name])
                for group in opt.param_groups:
                    group["lr"] = getattr(self.cfg, RATES[name])
            self._restore_rngs(state["rng"])
            self.epoch, self.critic_steps = int(state["epoch"]), int(state["critic_steps"])
            self.generator_steps = int(state["generator_steps"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"checkpoint does not fit the integrated system: {str(err)[:200]}") from None

    def load_weights(self, state: dict[str, Any]) -> None:
        """The networks' weights only: enough to sample."""
        try:
            self.nets.load_state_dict(state["nets"])
            self.epoch = int(state["epoch"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"checkpoint does not fit the integrated system: {str(err)[:200]}") from None
