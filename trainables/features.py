"""Feature networks for the quality metrics, none of them downloaded.

- `RandomEmbedding`: a fixed-seed random ReLU CNN whose per-stage channel means and standard deviations are the
  feature space of KID and precision / recall / density / coverage, for any image dataset (a folder included).
  Random convolutional features are a known offline stand-in for Inception: Naeem et al. (2020, "Reliable
  Fidelity and Diversity Metrics", section 4.3) find that density and coverage in a randomly initialised CNN's
  embedding rank generators like the ImageNet one does on data far from ImageNet; and since nothing is trained,
  the space is the same on every machine, for every dataset and every run, so numbers stay comparable.
- `Classifier`: a small CNN trained once on a labelled dataset's real images and cached on disk, used to read the
  mode (class) of each generated image. Stacked digits use the digits classifier on each of the three channels.

Both read images in [-1, 1] of any side and resize them to INPUT_SIZE first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trainables.data import Dataset, load_dataset, to_float
from trainables.errors import DataError

INPUT_SIZE = 32  # the random embedding resizes every image to this side first
CLASSIFIER_SIZE = 16  # and the classifier to this one: enough for a digit or a sprite's shape and palette
EMBED_WIDTHS = (16, 32, 64, 128)  # random CNN stages; features: mean and std of each channel per stage
EMBED_SEED = 2020
CLASSIFIER_VERSION = 1  # bump to invalidate cached classifiers when the architecture or training changes
CLASSIFIER_EPOCHS = 20
CLASSIFIER_BATCH = 64
SPRITES_TRAIN_SIZE = 2400  # a fresh procedural draw to train on (50 per mode); the run's own draw is held out
SPRITES_TRAIN_SEED = 90210
HELD_OUT_FRACTION = 0.2  # digits and folders: the held-out split for the printed accuracy


def resize(images: torch.Tensor, side: int = INPUT_SIZE) -> torch.Tensor:
    """(N, C, H, W) floats -> (N, C, side, side), antialiased both ways."""
    if images.shape[-1] == side and images.shape[-2] == side:
        return images
    return F.interpolate(images, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


class RandomEmbedding(nn.Module):
    """Conv 3x3 + ReLU stages with average pooling between them; He-initialised from a fixed seed."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(EMBED_SEED + channels)
        widths = (channels, *EMBED_WIDTHS)
        self.stages = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths, widths[1:]))
        with torch.no_grad():
            for conv in self.stages:
                fan_in = conv.in_channels * 9
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                conv.bias.zero_()
        self.requires_grad_(False)
        self.to(memory_format=torch.channels_last)  # 2.3x faster on the CPU, same numbers
        self.dim = 2 * sum(EMBED_WIDTHS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x, parts = resize(images.float()).contiguous(memory_format=torch.channels_last), []
        for i, conv in enumerate(self.stages):
            x = F.relu(conv(x if i == 0 else F.avg_pool2d(x, 2)))
            mean = x.mean(dim=(2, 3))
            parts += [mean, (x.square().mean(dim=(2, 3)) - mean.square()).clamp(min=0).sqrt()]
        return torch.cat(parts, dim=1)


class Classifier(nn.Module):
    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(channels, 16), block(16, 32), block(32, 64))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * (CLASSIFIER_SIZE // 8) ** 2,
                                                                           num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(resize(images.float(), CLASSIFIER_SIZE)))


@dataclasses.dataclass(frozen=True)
class TrainedClassifier:
    """A classifier with what it was measured to do on held-out real images."""

    net: Classifier
    num_classes: int
    accuracy: float
    per_class: tuple[float, ...]  # held-out accuracy of each class
    per_channel: bool  # stacked digits: classify each channel as a digit

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 200) -> torch.Tensor:
        """int64 class of each image in [-1, 1] (stacked digits: 100 * R + 10 * G + B)."""
        if self.per_channel:
            n, c = images.shape[:2]
            digits = self.predict_plain(images.reshape(n * c, 1, *images.shape[2:]), batch).view(n, c)
            weights = 10 ** torch.arange(c - 1, -1, -1, device=digits.device)
            return (digits * weights).sum(dim=1)
        return self.predict_plain(images, batch)

    @torch.no_grad()
    def predict_plain(self, images: torch.Tensor, batch: int = 200) -> torch.Tensor:
        net = self.net.to(images.device, memory_format=torch.channels_last).eval()  # as the embedding
        images = images.contiguous(memory_format=torch.channels_last)
        return torch.cat([net(images[i:i + batch]).argmax(dim=1) for i in range(0, len(images), batch)])


def cache_dir() -> Path:
    """$GANTUNE_CACHE, or ~/.cache/gantune."""
    return Path(os.environ.get("GANTUNE_CACHE") or Path.home() / ".cache" / "gantune")


def classifier_for(data: Dataset) -> TrainedClassifier | None:
    """The cached classifier of a labelled image dataset, trained on first use; None when unlabelled."""
    if data.kind != "image" or data.labels is None or data.num_modes is None:
        return None
    if data.name == "stacked_digits":
        digits = load_dataset("digits", data.tensor.shape[-1], 1)
        return dataclasses.replace(classifier_for(digits), num_classes=data.num_modes, per_channel=True)
    if data.name == "digits":  # the whole set, whatever subset the run trains on
        data = load_dataset("digits", data.tensor.shape[-1], data.tensor.shape[1])
    train, held_out = _training_split(data)
    key = _cache_key(data, train)
    path = cache_dir() / "classifiers" / f"{key}.pt"
    if path.is_file():
        try:
            return _load(path)
        except (RuntimeError, KeyError, EOFError, ValueError):
            pass  # damaged or from another version: retrain and overwrite
    trained = train_classifier(train, held_out, data.num_modes)
    _save(trained, path)
    return trained


def _training_split(data: Dataset) -> tuple[Dataset, Dataset]:
    """Sprites train on a fresh draw and hold out the run's own; other data hold out a seeded 20% split."""
    if data.name == "sprites":
        side, channels = data.tensor.shape[-1], data.tensor.shape[1]
        return load_dataset("sprites", side, channels, SPRITES_TRAIN_SEED, SPRITES_TRAIN_SIZE), data
    n = len(data.labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    cut = int(round(n * (1 - HELD_OUT_FRACTION)))
    return _subset(data, order[:cut]), _subset(data, order[cut:])


def _subset(data: Dataset, index: torch.Tensor) -> Dataset:
    return dataclasses.replace(data, tensor=data.tensor[index], labels=data.labels[index])


def _cache_key(data: Dataset, train: Dataset) -> str:
    digest = hashlib.sha256()
    digest.update(f"v{CLASSIFIER_VERSION}:{data.num_modes}:{tuple(train.tensor.shape)}".encode())
    digest.update(train.tensor.contiguous().numpy().tobytes())
    digest.update(train.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def train_classifier(train: Dataset, held_out: Dataset, num_classes: int, seed: int = 0) -> TrainedClassifier:
    """Adam on the real images with small shifts and pixel noise (so GAN artefacts do not fool it)."""
    if int(train.labels.max()) >= num_classes:
        raise DataError(f"labels of {train.name!r} exceed its {num_classes} classes")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Classifier(train.tensor.shape[1], num_classes)
        images, labels = resize(to_float(train.tensor), CLASSIFIER_SIZE), train.labels
        opt = torch.optim.Adam(net.parameters(), 2e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=CLASSIFIER_EPOCHS * (
            (len(labels) + CLASSIFIER_BATCH - 1) // CLASSIFIER_BATCH))
        net.train()
        for _ in range(CLASSIFIER_EPOCHS):
            for index in torch.randperm(len(labels)).split(CLASSIFIER_BATCH):
                loss = F.cross_entropy(net(_jitter(images[index])), labels[index])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    net.eval().requires_grad_(False)
    accuracy, per_class = _accuracy(net, held_out, num_classes)
    return TrainedClassifier(net, num_classes, accuracy, per_class, per_channel=False)


def _jitter(images: torch.Tensor) -> torch.Tensor:
    shift = [int(s) for s in torch.randint(-2, 3, (2,))]
    return torch.roll(images, shifts=shift, dims=(2, 3)) + 0.05 * torch.randn_like(images)


@torch.no_grad()
def _accuracy(net: Classifier, held_out: Dataset, num_classes: int) -> tuple[float, tuple[float, ...]]:
    plain = TrainedClassifier(net, num_classes, 0.0, (), per_channel=False)
    right = (plain.predict_plain(to_float(held_out.tensor)) == held_out.labels).float()
    counts = torch.bincount(held_out.labels, minlength=num_classes).clamp(min=1)
    per_class = torch.bincount(held_out.labels, weights=right, minlength=num_classes) / counts
    return float(right.mean()), tuple(round(float(a), 4) for a in per_class)


def _save(trained: TrainedClassifier, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # concurrent trials each write their own, then swap in
    torch.save({"state": trained.net.state_dict(), "channels": trained.net.features[0][0].in_channels,
                "num_classes": trained.num_classes, "accuracy": trained.accuracy,
                "per_class": list(trained.per_class)}, tmp)
    tmp.replace(path)


def _load(path: Path) -> TrainedClassifier:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = Classifier(int(saved["channels"]), int(saved["num_classes"]))
    net.load_state_dict(saved["state"])
    net.eval().requires_grad_(False)
    return TrainedClassifier(net, int(saved["num_classes"]), float(saved["accuracy"]),
                             tuple(saved["per_class"]), per_channel=False)
