"""Exponential moving average of the generator, parameters and buffers alike.

The seed project's EMA averaged parameters only, so its eval-mode samples used BatchNorm statistics frozen
at initialisation; here BatchNorm's running statistics are copied from the live generator at every update
(as StyleGAN2-ADA does). foreach lerp keeps the update free of host synchronisation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class Ema:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - self.decay)
        for ema_buf, buf in zip(self.model.buffers(), model.buffers()):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
