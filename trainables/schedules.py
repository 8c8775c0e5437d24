"""Critic schedules by name: when, after a critic step, the generator takes its step."""

from __future__ import annotations

from collections.abc import Callable

# (batch index within the epoch, critic steps so far in the run, N_CRITIC) -> take a generator step now?
Schedule = Callable[[int, int, int], bool]


def _seed(batch_index: int, critic_steps: int, n_critic: int) -> bool:
    """The seed projects': one critic step per batch, a generator step every N_CRITIC batches of an epoch."""
    return batch_index % n_critic == 0


def _standard(batch_index: int, critic_steps: int, n_critic: int) -> bool:
    """Gulrajani et al. Algorithm 1: N_CRITIC critic steps on fresh batches, then one generator step."""
    return critic_steps % n_critic == 0


CRITIC_SCHEDULES: dict[str, Schedule] = {"seed": _seed, "standard": _standard}


# A cooldown: the run's last epochs train at a quarter of both rates, so the final generator is not caught
# mid-swing (a WGAN-GP toy run's last-epoch high-quality share swings 52-94% at constant rates).
COOLDOWN_FACTOR = 0.25


def cooldown_scale(epoch: int, num_epochs: int, share: float) -> float:
    """The learning-rate multiplier of 0-based `epoch`: COOLDOWN_FACTOR in the last `share` of NUM_EPOCHS, else 1."""
    return COOLDOWN_FACTOR if share > 0 and epoch >= num_epochs - round(share * num_epochs) else 1.0


# Guide 004's project steers the discriminator's learning rate each epoch by how sure it is.
ADAPT_FACTOR = 0.95
ADAPT_BOUNDS = (1e-5, 3e-4)


def adapt_lr_d(lr: float, d_real: float, d_fake: float) -> tuple[float, str]:
    """The next epoch's LR_D and why: x0.95 when D(real) > 0.9 and D(fake) < 0.1 (too strong), /0.95 when
    D(real) < 0.75 and D(fake) > 0.25 (too weak), kept within 1e-5..3e-4; unchanged otherwise."""
    low, high = ADAPT_BOUNDS
    if d_real > 0.9 and d_fake < 0.1:
        return min(max(lr * ADAPT_FACTOR, low), high), "discriminator too sure: LR_D x0.95"
    if d_real < 0.75 and d_fake > 0.25:
        return min(max(lr / ADAPT_FACTOR, low), high), "discriminator unsure: LR_D /0.95"
    return lr, "balanced"
