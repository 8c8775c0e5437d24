"""The training loop: WGAN-GP (two critic schedules) or non-saturating BCE, logged as per-epoch aggregates."""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F

from . import nets
from .config import RunConfig
from .data import Dataset
from .probe import probe

MEAN_ONLY = ("gp", "w_dist", "d_real", "d_fake", "d_acc", "g_acc")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)))
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(cfg: RunConfig, critic, real, fake) -> tuple[torch.Tensor, dict]:
    s_real, s_fake = critic(real).squeeze(1), critic(fake).squeeze(1)
    if cfg.loss == "wgan":
        gp = gradient_penalty(critic, real, fake)
        w = s_real.mean() - s_fake.mean()
        stats = {"gp": gp.item(), "w_dist": w.item(), "d_real": s_real.mean().item(), "d_fake": s_fake.mean().item()}
        return cfg.lambda_gp * gp - w, stats
    l_real = F.binary_cross_entropy_with_logits(s_real, torch.ones_like(s_real))
    l_fake = F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake))
    p_real, p_fake = s_real.sigmoid(), s_fake.sigmoid()
    acc = ((p_real > 0.5).float().mean() + (p_fake < 0.5).float().mean()) / 2
    stats = {"d_real": p_real.mean().item(), "d_fake": p_fake.mean().item(), "d_acc": acc.item()}
    return (l_real + l_fake) if cfg.bce_style == "sum" else (l_real + l_fake) / 2, stats


def generator_loss(cfg: RunConfig, critic, fake) -> tuple[torch.Tensor, dict]:
    s = critic(fake).squeeze(1)
    if cfg.loss == "wgan":
        return -s.mean(), {}
    return F.binary_cross_entropy_with_logits(s, torch.ones_like(s)), {"g_acc": (s > 0).float().mean().item()}


class Trainer:
    """Holds one run's networks and optimisers; `epoch()` trains one epoch and returns its log row."""

    def __init__(self, cfg: RunConfig, data: Dataset):
        torch.manual_seed(cfg.seed)
        self.cfg, self.data = cfg, data
        self.gen, self.critic = nets.build(data.kind, cfg)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.steps: list[dict] = []  # one row per generator step, as a trainer printing every iteration logs it

    def _noise(self) -> torch.Tensor:
        return torch.randn(self.cfg.batch, self.cfg.z_dim, generator=self.rng)

    def critic_step(self, cfg: RunConfig, stats: dict) -> None:
        real = self.data.x[torch.randint(len(self.data.x), (cfg.batch,), generator=self.rng)]
        with torch.no_grad():
            fake = self.gen(self._noise())
        loss, extra = critic_loss(cfg, self.critic, real, fake)
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_d.step()
        for key, value in {"d_loss": loss.item(), **extra}.items():
            stats[key].append(value)

    def gen_step(self, cfg: RunConfig, stats: dict) -> None:
        loss, extra = generator_loss(cfg, self.critic, self.gen(self._noise()))
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()
        for key, value in {"g_loss": loss.item(), **extra}.items():
            stats[key].append(value)

    def epoch(self, number: int) -> dict:
        cfg = self.cfg.at_epoch(number)
        for group, lr in ((self.opt_g.param_groups[0], cfg.lr_g), (self.opt_d.param_groups[0], cfg.lr_d)):
            group["lr"] = lr
        stats = defaultdict(list)
        for i in range(cfg.steps):
            critic_steps = cfg.n_critic if cfg.loss == "wgan" and cfg.schedule == "A" else 1
            for _ in range(critic_steps):
                self.critic_step(cfg, stats)
            if cfg.loss == "bce" or cfg.schedule == "A" or i % cfg.n_critic == 0:
                self.gen_step(cfg, stats)
                self.steps.append({key: values[-1] for key, values in stats.items() if key in STEP_KEYS})
        return aggregate(stats, cfg.agg)


STEP_KEYS = ("d_loss", "g_loss", "d_acc")


def aggregate(stats: dict, how: str) -> dict:
    row = {}
    for key, values in stats.items():
        total = math.fsum(values)
        row[key] = total if how == "sum" and key not in MEAN_ONLY else total / len(values)
    return row


def train(cfg: RunConfig, data: Dataset, steps: list[dict] | None = None) -> tuple[list[dict], list[dict]]:
    """(log rows, sample-trace rows), one per epoch; the trace also has a row for epoch -1 (before training).
    `steps`, where given, receives one row per generator step (its iteration number, d_loss, g_loss, d_acc)."""
    torch.set_num_threads(1)
    trainer = Trainer(cfg, data)
    n_probe = 256 if data.kind == "image" else 512
    z = torch.randn(n_probe, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
    batchnorm = cfg.d_norm == "batch"
    row, prev = probe(trainer.gen, trainer.critic, data, z, None, batchnorm)
    logs, trace = [], [{"epoch": -1, **row}]
    for epoch in range(cfg.epochs):
        logs.append({"epoch": epoch, **trainer.epoch(epoch)})
        row, prev = probe(trainer.gen, trainer.critic, data, z, prev, batchnorm)
        trace.append({"epoch": epoch, **row})
    if steps is not None:
        steps.extend({"iteration": i, **row} for i, row in enumerate(trainer.steps))
    return logs, trace
