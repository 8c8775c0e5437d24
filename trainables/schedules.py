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
