"""What every gantune training loop shares (trainables.trainer's one-generator loop and the integrated system's):
the real data on the device with its random generators and fixed noise, its batches and their augmentation, the
sample and quality references, the columns that end an epoch's row (timing, quality) and the random state a
checkpoint keeps. Plain PyTorch: no Ray, no MLflow, no files.

A loop subclasses `TrainerBase`, calls `_init_data` once its networks are built, and provides `sampler` (the network
the quality metrics sample, as a function of noise alone).
"""

from __future__ import annotations

import time

import torch

from trainables.config import GanConfig
from trainables.data import Dataset, augment, to_float
from trainables.device import Placement
from trainables.errors import CheckpointError
from trainables.metrics import Reference, reference_stats
from trainables.quality import QualityReference, quality, reference


class TrainerBase:
    cfg: GanConfig
    place: Placement
    epoch: int  # epochs completed

    def _init_data(self, cfg: GanConfig, data: Dataset, place: Placement) -> None:
        """The real side of training: the data on the device, the random generators that order and augment it and
        draw latents, the fixed noise the samples come from, and the sample statistics' reference."""
        dev = place.device
        self.images, self.background = data.kind == "image", data.background
        self.dataset = data  # the real data the quality metrics compare with
        self.data = data.tensor.to(dev)  # the whole dataset lives on the device: no loader, no copies per step
        self.data_rng = torch.Generator(dev).manual_seed(cfg.seed + 1)  # order and augmentation
        self.noise_rng = torch.Generator(dev).manual_seed(cfg.seed + 2)  # latents and GP interpolation
        self.fixed_noise = torch.randn(cfg.num_samples, cfg.latent_dim, device=dev,
                                       generator=torch.Generator(dev).manual_seed(cfg.seed + 3))
        self.reference = self._reference()
        self._quality_ref: QualityReference | None = None  # built on the first quality evaluation

    @property
    def sampler(self) -> torch.nn.Module:
        raise NotImplementedError

    # ----- batches -----------------------------------------------------------------------------------------------
    def _batches(self) -> list[torch.Tensor]:
        n, b = self.data.shape[0], self.cfg.batch_size
        order = torch.randperm(n, device=self.place.device, generator=self.data_rng)
        if n <= b:
            return [order[: n - n % self.cfg.pack]]  # a packing critic scores whole groups
        return list(order[: n - n % b].view(-1, b))  # drop the ragged last batch: GP and BN want full batches

    def _real_batch(self, index: torch.Tensor) -> torch.Tensor:
        batch = self.data[index]
        if not self.images:
            return batch
        cfg = self.cfg
        batch = augment(to_float(batch), cfg.horizontal_flip_prob, cfg.rotation_degrees, cfg.color_jitter,
                        self.background, self.data_rng)
        return batch.contiguous(memory_format=self.place.memory_format)

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, device=self.place.device, generator=self.noise_rng)

    # ----- the end of an epoch's row -------------------------------------------------------------------------------
    @staticmethod
    def _timing(start: float, seen: int, lr_g: float, lr_d: float) -> dict[str, float]:
        """The run columns of an epoch that began at `start` (perf_counter) and trained on `seen` real samples."""
        elapsed = time.perf_counter() - start
        return {"lr_g": lr_g, "lr_d": lr_d, "epoch_time_s": elapsed, "images_per_s": seen / elapsed}

    def _epoch_row(self, row: dict[str, float]) -> dict[str, float]:
        """The finished epoch's row, numbered by the epoch, with the quality columns when they are due."""
        if self.quality_due(self.epoch - 1):
            start = time.perf_counter()
            row.update(self.quality())
            row["quality_time_s"] = time.perf_counter() - start
        return {"epoch": float(self.epoch - 1), **row}

    # ----- references and quality ------------------------------------------------------------------------------------
    def quality_due(self, epoch: int) -> bool:
        """Quality is measured every QUALITY_EVERY epochs and after the last one."""
        every = self.cfg.quality_every
        return every > 0 and ((epoch + 1) % every == 0 or epoch == self.cfg.num_epochs - 1)

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

    # ----- random state ------------------------------------------------------------------------------------------
    def _rng_state(self) -> dict[str, torch.Tensor]:
        return {"data": self.data_rng.get_state(), "noise": self.noise_rng.get_state(), "global": torch.get_rng_state(),
                **({"cuda": torch.cuda.get_rng_state()} if self.place.device.type == "cuda" else {})}

    def _restore_rngs(self, rng: dict[str, torch.Tensor]) -> None:
        try:
            self.data_rng.set_state(rng["data"])
            self.noise_rng.set_state(rng["noise"])
            if "global" in rng:
                torch.set_rng_state(rng["global"])
            if "cuda" in rng and self.place.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"])
        except RuntimeError:
            raise CheckpointError(f"the checkpoint's random state comes from another device type than "
                                  f"{self.place.device.type}; resume on the device it was written on") from None
