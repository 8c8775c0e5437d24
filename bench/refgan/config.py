"""The one frozen config of a reference run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunConfig:
    data: str = "ring8"  # ring8 | grid25 | digits
    loss: str = "wgan"  # wgan (WGAN-GP) | bce (non-saturating)
    schedule: str = "A"  # wgan: A = n_critic critic steps then one G step; B = critic every batch, G every n_critic
    bce_style: str = "mean"  # bce d_loss: mean (Keras, ~0.69 at chance) | sum (PyTorch real + fake, ~1.39)
    agg: str = "mean"  # per-epoch aggregate of the step losses: mean | sum
    n_critic: int = 5
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_gp: float = 10.0
    d_norm: str = "none"  # none | layer | batch | spectral | dropout
    dropout: float = 0.3
    d_width: int = 128
    g_width: int = 128
    z_dim: int = 8
    epochs: int = 40
    steps: int = 20  # G steps per epoch (schedule A, bce) or batches per epoch (schedule B)
    batch: int = 128
    data_std: float = 0.05
    n_data: int = 2000
    seed: int = 0
    late_at: int | None = None  # from this epoch on the `late` overrides (lr_g, lr_d, lambda_gp, n_critic) apply
    late: tuple[tuple[str, float], ...] = ()

    def at_epoch(self, epoch: int) -> RunConfig:
        """The config in force at `epoch` (the late overrides applied once late_at is reached)."""
        if self.late_at is None or epoch < self.late_at:
            return self
        from dataclasses import replace

        return replace(self, **dict(self.late), late_at=None, late=())
