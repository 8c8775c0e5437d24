"""Device choice and the CUDA speed settings, decided once per run."""

from __future__ import annotations

import dataclasses

import torch

from trainables.config import GanConfig
from trainables.errors import DeviceError


@dataclasses.dataclass(frozen=True)
class Placement:
    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype, None = full float32
    memory_format: torch.memory_format

    def describe(self) -> str:
        amp = "bf16 autocast" if self.amp_dtype is not None else "float32"
        layout = ", channels_last" if self.memory_format == torch.channels_last else ""
        return f"{self.device.type} ({amp}{layout})"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise DeviceError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for, but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(name)


def placement(cfg: GanConfig, device: torch.device, image_model: bool) -> Placement:
    """bf16 autocast on CUDA: bf16 has float32's exponent range, so the gradient penalty's second-order
    gradients neither overflow nor underflow and no GradScaler is needed (fp16 would need the scaled-penalty
    dance of the AMP docs); the penalty's norm and every loss are reduced in float32."""
    cuda = device.type == "cuda"
    use_amp = cfg.amp == "bf16" or (cfg.amp == "auto" and cuda and torch.cuda.is_bf16_supported())
    use_cl = image_model and (cfg.channels_last == "on" or (cfg.channels_last == "auto" and cuda))
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Placement(device, torch.bfloat16 if use_amp else None,
                     torch.channels_last if use_cl else torch.preserve_format)
