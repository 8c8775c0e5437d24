"""Run specs: recipes meant to provoke each outcome, varied by a seeded rng (labels come from samples, not these)."""

from __future__ import annotations

import random

from .config import RunConfig


def _2d(rng: random.Random, data: str, loss: str, schedule: str) -> dict:
    steps = 50 if loss == "bce" or schedule == "B" else rng.choice([15, 20])
    std = rng.choice([0.03, 0.04, 0.05, 0.05]) if data == "ring8" else 0.05
    return {"z_dim": 8, "batch": 128, "epochs": rng.randint(40, 55), "steps": steps, "data_std": std}


def _images(rng: random.Random, loss: str, schedule: str) -> dict:
    steps = 20 if loss == "bce" or schedule == "B" else rng.choice([6, 8])
    return {"z_dim": 32, "batch": 64, "n_data": 800, "epochs": rng.randint(20, 26), "steps": steps, "g_width": 64}


def wgan_equal(rng, data):
    lr = rng.choice([2e-4, 5e-4, 5e-4])
    schedule = rng.choice(["A", "A", "A", "B"])
    norm = rng.choice(["layer", "layer", "none"])
    n_critic = rng.choice([2, 5]) if schedule == "B" else 5
    return {"lr_g": lr, "lr_d": lr, "betas": (0.0, 0.9), "d_norm": norm, "schedule": schedule, "n_critic": n_critic}


def bce_equal(rng, data):
    style = {"bce_style": rng.choice(["mean", "sum"]), "agg": rng.choice(["mean", "mean", "sum"])}
    if data == "digits":
        lr = rng.choice([1e-4, 2e-4])
        return {"loss": "bce", "lr_g": lr, "lr_d": lr, "d_norm": rng.choice(["spectral", "none"]), **style}
    lr = rng.choice([5e-4, 1e-3])
    return {"loss": "bce", "lr_g": lr, "lr_d": lr, "betas": (0.0, 0.9), "d_norm": "spectral", **style}


def critic_dominant(rng, data):
    lr_d = rng.choice([5e-4, 1e-3])
    betas = rng.choice([(0.0, 0.9), (0.5, 0.999)])
    return {"lr_d": lr_d, "lr_g": lr_d / rng.choice([10, 100]), "n_critic": 5, "betas": betas}


def g_lr_tiny(rng, data):
    return {"lr_g": 1e-7, "lr_d": rng.choice([2e-4, 1e-3]), "d_norm": rng.choice(["none", "layer"])}


def critic_lr_tiny(rng, data):
    loss = rng.choice(["wgan", "wgan", "bce"])
    return {"loss": loss, "lr_d": 1e-7, "lr_g": rng.choice([2e-4, 5e-4]), "betas": (0.5, 0.999)}


def hot(rng, data):
    lr = rng.choice([5e-3, 1e-2])
    knob = {"lambda_gp": 0.1} if rng.random() < 0.5 else {"betas": (0.9, 0.99)}
    return {"lr_g": lr, "lr_d": lr, "n_critic": rng.choice([1, 5]), **knob}


def no_penalty(rng, data):
    return {"lr_g": 0.5, "lr_d": 0.5, "lambda_gp": 0.0, "n_critic": rng.choice([1, 5])}


def late_break(rng, data):
    diverge = (("lr_g", 0.5), ("lr_d", 0.5), ("lambda_gp", 0.0))
    swing = (("lr_g", 1e-2), ("lr_d", 1e-2), ("lambda_gp", 0.1), ("n_critic", 1))
    late = diverge if rng.random() < 0.4 else swing
    return {**wgan_equal(rng, data), "schedule": "A", "n_critic": 5, "late_at": rng.randint(8, 16), "late": late}


def wgan_ring(rng, data):
    return {**wgan_equal(rng, data), "lr_g": 5e-4, "lr_d": 5e-4, "d_norm": "layer", "schedule": "A", "n_critic": 5}


def frozen_critic(rng, data):
    return {"lr_d": 1e-7, "lr_g": rng.choice([2e-4, 5e-4]), "betas": (0.5, 0.999)}


def bce_strong_d(rng, data):
    lr_g = rng.choice([1e-4, 2e-4])
    d_width = 128 if data == "digits" else 256
    return {
        "loss": "bce",
        "lr_g": lr_g,
        "lr_d": lr_g * rng.choice([10, 20]),
        "d_width": d_width,
        "bce_style": rng.choice(["mean", "sum"]),
    }


def bce_weak_d(rng, data):
    weak = {"lr_d": 1e-6} if rng.random() < 0.5 else {"d_norm": "dropout", "dropout": 0.7, "lr_d": 2e-5, "d_width": 32}
    return {"loss": "bce", "lr_g": rng.choice([5e-4, 1e-3]), "bce_style": rng.choice(["mean", "sum"]), **weak}


# name: (intended label, share of a set, recipe, data choices)
RECIPES = {
    "wgan_equal": ("healthy", 0.3, wgan_equal, ("ring8", "ring8", "ring8", "grid25", "digits")),
    "bce_equal": ("healthy", 0.15, bce_equal, ("ring8", "ring8", "digits")),
    "critic_dominant": ("discriminator_dominant", 0.1, critic_dominant, ("ring8", "grid25", "digits")),
    "g_lr_tiny": ("discriminator_dominant", 0.05, g_lr_tiny, ("ring8", "grid25", "digits")),
    "critic_lr_tiny": ("generator_dominant", 0.07, critic_lr_tiny, ("ring8", "grid25", "digits")),
    "hot": ("unstable", 0.08, hot, ("ring8", "grid25", "digits")),
    "no_penalty": ("diverged", 0.05, no_penalty, ("ring8", "grid25")),
    "late_break": ("unstable", 0.06, late_break, ("ring8", "grid25")),
    "bce_strong_d": ("discriminator_dominant", 0.06, bce_strong_d, ("ring8", "grid25", "digits")),
    "bce_weak_d": ("mode_collapse", 0.08, bce_weak_d, ("ring8", "ring8", "digits")),
    # extra healthy-prone runs appended after a set's main plan (the main plan's settings rarely end healthy)
    "wgan_ring": ("healthy", 0.0, wgan_ring, ("ring8",)),
    "bce_ring": ("healthy", 0.0, bce_equal, ("ring8",)),
    "frozen_critic": ("mode_collapse", 0.0, frozen_critic, ("ring8",)),  # G chases a critic that never learns
}


def spec(rng: random.Random, recipe: str, seed: int) -> RunConfig:
    data = rng.choice(RECIPES[recipe][3])
    fields = RECIPES[recipe][2](rng, data)
    loss, schedule = fields.get("loss", "wgan"), fields.get("schedule", "A")
    base = _images(rng, loss, schedule) if data == "digits" else _2d(rng, data, loss, schedule)
    return RunConfig(**{**base, **fields, "data": data, "seed": seed})


def plan(
    rng: random.Random, count: int, extra: tuple, layouts, seed_base: int
) -> list[tuple[str, str, RunConfig, str]]:
    """(name, recipe, config, layout name): `count` runs with recipes in proportion to their shares, then `extra`."""
    names = [r for r, (_, share, _, _) in RECIPES.items() for _ in range(round(share * count))]
    names = (names + ["wgan_equal"] * count)[:count] + list(extra)
    specs = []
    for i, recipe in enumerate(names):
        cfg = spec(rng, recipe, seed_base + i)
        layout = rng.choice([lay.name for lay in layouts if cfg.loss in lay.families])
        specs.append((f"{i:02d}_{recipe}_{cfg.data}", recipe, cfg, layout))
    return specs
