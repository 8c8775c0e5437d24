"""Sample quality and mode coverage with nothing downloaded: one entry point, `quality(model, data)`.

Every dataset gets KID (torchmetrics' unbiased estimator, cubic polynomial kernel, averaged over subsets) and
precision / recall / density / coverage (Naeem et al. 2020, the authors' `prdc` package), in the fixed random
CNN embedding of `trainables.features` for images and in the raw coordinates for 2-D points, both standardised
by the real reference's per-dimension mean and spread. On top of that:

- labelled images (sprites, digits, stacked_digits, a folder of class folders): `modes_hit` and `mode_kl`
  = KL(generated || real) over the classes a cached classifier reads (PacGAN's direction: finite when modes are
  missing), and `copy_frac`, the generated images that sit nearer a training image than real images sit to each
  other (a generator that memorises its data);
- 2-D mixtures (ring8, grid25): VEEGAN's and PacGAN's `modes_captured`, `high_quality_pct` and `reverse_kl`.

`quality` is the one scalar the sweep optimises, HIGHER IS BETTER, at most 1:
- once samples reach the data (some land among real neighbours): sqrt(min(density, 1) * coverage), in (0, 1].
  Coverage falls when modes go missing, density when samples leave the data's manifold (blur, artefacts);
  both are robust to outliers, unlike precision and recall. Two disjoint halves of real data score 0.95-1.
- before that (noise, early blobs, gray squares: density * coverage = 0): -log10(1 + KID) / 10, below zero,
  so trials that are all still far from the data are ranked by how far (KID) instead of tying at zero.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import warnings
from collections.abc import Callable

import torch
from torch import nn

from trainables.data import Dataset, to_float
from trainables.errors import DataError
from trainables.features import INPUT_SIZE, RandomEmbedding, TrainedClassifier, classifier_for, resize
from trainables.vocabulary import QUALITY_METRICS

NEAREST_K = 5  # PRDC's k (the paper's default)
MIN_SAMPLES = 2 * NEAREST_K  # the fewest real samples whose neighbourhoods the metrics can build
KID_SUBSETS = 10
KID_SUBSET_SIZE = 500  # or fewer when fewer samples exist
REAL_MAX = 2000  # real images (points) in the reference
MODE_SAMPLES = 1000  # at least this many generated samples when modes are counted
SAMPLES_PER_MODE = 10  # and at least this many per mode (stacked digits: 10,000 for 1,000 modes)
POINT_SAMPLES = 2500  # VEEGAN / PacGAN's sample count on the 2-D mixtures
HIGH_QUALITY_SIGMAS = 3.0  # a point is high quality within 3 standard deviations of its nearest mode
COPY_RATIO = 0.2  # a copy: nearer a training image than 0.2x the real data's median nearest-neighbour distance
COPY_MARGIN = 0.1  # flagged when copies exceed the real data's own rate by this fraction of samples
COPY_TRAIN_MAX = 20000  # training images the copy check compares against
BATCH = 500
EMBED_BATCH = 200  # the random embedding's activations stay in cache: 2x faster than 500 on the CPU

Model = Callable[[torch.Tensor], torch.Tensor]  # latents (N, latent_dim) -> samples in the data's scale


@dataclasses.dataclass(frozen=True)
class QualityReference:
    """Everything about the real data that scoring needs, computed once per run."""

    kind: str  # "image" or "points"
    embed: nn.Module | None  # None for points: the coordinates are the features
    mean: torch.Tensor  # per-feature standardisation
    scale: torch.Tensor
    real_features: torch.Tensor  # standardised, (n_real, d)
    classifier: TrainedClassifier | None
    real_modes: torch.Tensor | None  # probability of each mode in the real data (smoothed)
    centres: torch.Tensor | None  # points: the mixture's mode centres
    mode_std: float | None
    train_pixels: torch.Tensor | None  # images: flattened training images at INPUT_SIZE, for the copy check
    copy_threshold: float
    copy_baseline: float  # fraction of real images with a near-copy in the rest of the data
    default_samples: int

    @property
    def num_modes(self) -> int | None:
        return None if self.real_modes is None else len(self.real_modes)


def reference(data: Dataset, device: torch.device | str = "cpu", seed: int = 0) -> QualityReference:
    """The real side of every metric; trains (or loads) the dataset's classifier when it is labelled."""
    device = torch.device(device)
    real = _real_subset(data, seed).to(device)
    if data.kind == "points":
        return _points_reference(data, real, device)
    embed = RandomEmbedding(data.tensor.shape[1]).to(device).eval()
    raw = _embed(embed, to_float(real))
    mean, scale = raw.mean(dim=0), raw.std(dim=0).clamp(min=1e-6)
    classifier = classifier_for(data)
    pixels = _pixels(to_float(data.tensor[:COPY_TRAIN_MAX].to(device)))
    threshold, baseline = _copy_calibration(pixels, seed)
    modes = None if classifier is None else _real_modes(data, classifier.num_classes)
    n_default = max(MODE_SAMPLES, SAMPLES_PER_MODE * classifier.num_classes) if classifier else len(real)
    return QualityReference("image", embed, mean, scale, (raw - mean) / scale, classifier, modes, None, None,
                            pixels, threshold, baseline, max(n_default, MODE_SAMPLES))


def _points_reference(data: Dataset, real: torch.Tensor, device: torch.device) -> QualityReference:
    from trainables.data import points

    mean, scale = real.mean(dim=0), real.std(dim=0).clamp(min=1e-6)
    return QualityReference("points", None, mean, scale, (real - mean) / scale, None,
                            _real_modes(data, data.num_modes), points.mode_centres(data.name).to(device),
                            points.mode_std(data.name), None, math.nan, math.nan, POINT_SAMPLES)


def check_size(data: Dataset) -> None:
    """Refuse data too small to score (and so to train on), before a run starts rather than at its first score."""
    n = len(data.tensor)
    if n < MIN_SAMPLES:
        what = ("image" if data.kind == "image" else "sample") + ("" if n == 1 else "s")
        raise DataError(f"dataset {data.name!r} has {n} {what}; at least {MIN_SAMPLES} are needed (the quality "
                        f"metrics compare each with its {NEAREST_K} nearest neighbours)")


def _real_subset(data: Dataset, seed: int) -> torch.Tensor:
    check_size(data)
    n = len(data.tensor)
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:REAL_MAX]
    return data.tensor[pick]


def _real_modes(data: Dataset, num_modes: int) -> torch.Tensor:
    """The real mode histogram with half a count added to every mode, so KL(generated || real) stays finite."""
    counts = torch.bincount(data.labels, minlength=num_modes).double() + 0.5
    return counts / counts.sum()


@torch.no_grad()
def _embed(embed: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([embed(images[i:i + EMBED_BATCH]) for i in range(0, len(images), EMBED_BATCH)])


def _pixels(images: torch.Tensor) -> torch.Tensor:
    return resize(images.float(), INPUT_SIZE).flatten(1)


@torch.no_grad()
def _nearest(queries: torch.Tensor, pool: torch.Tensor, skip_self: bool = False) -> torch.Tensor:
    """Distance from each query to its nearest row of pool (excluding the same index when skip_self)."""
    out = []
    for i in range(0, len(queries), BATCH):
        dist = torch.cdist(queries[i:i + BATCH], pool)
        if skip_self:
            rows = torch.arange(dist.shape[0], device=dist.device)
            dist[rows, rows + i] = math.inf
        out.append(dist.min(dim=1).values)
    return torch.cat(out)


def _copy_calibration(pixels: torch.Tensor, seed: int) -> tuple[float, float]:
    """The copy threshold from the real data's leave-one-out nearest-neighbour distances, and its own rate."""
    n = min(len(pixels), 1000)
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed + 1)).to(pixels.device)
    shuffled = pixels[order]
    loo = _nearest(shuffled[:n], shuffled, skip_self=True)
    threshold = COPY_RATIO * float(loo.median())
    return threshold, float((loo < threshold).float().mean())


# ----- scoring ---------------------------------------------------------------------------------------------------
def score(samples: torch.Tensor, ref: QualityReference, seed: int = 0) -> dict[str, float]:
    """All metrics for generated samples (images in [-1, 1], or points) against the reference."""
    samples = samples.detach().float().to(ref.real_features.device)
    if not torch.isfinite(samples).all():
        return {"quality": -math.inf, **{k: math.nan for k in QUALITY_METRICS if k != "quality"}}
    raw = samples if ref.kind == "points" else _embed(ref.embed, samples)
    features = (raw - ref.mean) / ref.scale
    out = {**_kid(ref.real_features, features, seed), **_prdc(ref.real_features, features)}
    out["quality"] = quality_scalar(out)
    if ref.kind == "points":
        out.update(_mixture_modes(samples, ref))
    else:
        out.update(_class_modes(samples, ref))
        out.update(_copies(samples, ref))
    return out


def quality_scalar(metrics: dict[str, float]) -> float:
    """The sweep's objective from KID, density and coverage (see the module's docstring); higher is better."""
    on_data = min(metrics["density"], 1.0) * metrics["coverage"]
    if on_data > 0:
        return math.sqrt(on_data)
    return -math.log10(1.0 + max(metrics["kid"], 0.0)) / 10.0


def _kid(real: torch.Tensor, fake: torch.Tensor, seed: int) -> dict[str, float]:
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(KID_SUBSET_SIZE, len(real), len(fake))
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer": intended here
        torch.manual_seed(seed)  # the subsets are drawn from torch's global generator
        kid = KernelInceptionDistance(feature=nn.Identity(), subsets=KID_SUBSETS, subset_size=size).to(real.device)
        kid.update(real, real=True)
        kid.update(fake, real=False)
        mean, std = kid.compute()
    return {"kid": float(mean), "kid_std": float(std)}


def _prdc(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    import joblib
    from prdc import compute_prdc

    n = min(len(real), len(fake))  # the estimators assume as many fake samples as real ones
    # sequential: the package asks scikit-learn for 8 threads, which only wait on each other at this size;
    # stdout redirected: it prints the sample counts
    with joblib.parallel_config(backend="sequential"), contextlib.redirect_stdout(io.StringIO()):
        out = compute_prdc(real[:n].cpu().numpy(), fake[:n].cpu().numpy(), NEAREST_K)
    return {k: float(v) for k, v in out.items()}


def _kl(generated: torch.Tensor, real: torch.Tensor) -> float:
    """KL(generated || real) over modes; modes the generator never hits contribute nothing."""
    p = generated.double()
    hit = p > 0
    return float((p[hit] * (p[hit] / real[hit].to(p.device)).log()).sum())


def _histogram(modes: torch.Tensor, num_modes: int) -> torch.Tensor:
    return torch.bincount(modes, minlength=num_modes).double() / max(len(modes), 1)


def _class_modes(images: torch.Tensor, ref: QualityReference) -> dict[str, float]:
    if ref.classifier is None:
        return {}
    hist = _histogram(ref.classifier.predict(images), ref.num_modes)
    return {"modes_hit": float((hist > 0).sum()), "mode_kl": _kl(hist, ref.real_modes)}


def inside_mean_square_radius(sigmas: float = HIGH_QUALITY_SIGMAS) -> float:
    """E[r^2 / std^2 | r < sigmas * std] for a 2-D Gaussian mode (about 1.90 at 3 sigmas): r^2 / std^2 is
    chi-square with 2 degrees of freedom (exponential, mean 2), truncated at sigmas^2."""
    half = sigmas ** 2 / 2
    return 2.0 - 2 * half * math.exp(-half) / (1 - math.exp(-half))


def _mixture_modes(points: torch.Tensor, ref: QualityReference) -> dict[str, float]:
    """VEEGAN's and PacGAN's definitions: high quality within 3 std of the nearest mode; a mode is captured when
    a high-quality sample is nearest to it; reverse KL over the nearest modes of all samples. Plus `mode_spread`:
    the high-quality samples' RMS distance from their mode over a perfect sampler's (1 = the data's spread,
    below 1 = samples pile on the mode centres, which the 3-sigma rule counts as quality)."""
    dist = torch.cdist(points, ref.centres)
    nearest, mode = dist.min(dim=1)
    good = nearest < HIGH_QUALITY_SIGMAS * ref.mode_std
    captured = torch.unique(mode[good]).numel()
    mean_square = float((nearest[good] / ref.mode_std).pow(2).mean()) if good.any() else math.nan
    return {"modes_captured": float(captured), "high_quality_pct": 100.0 * float(good.float().mean()),
            "reverse_kl": _kl(_histogram(mode, len(ref.centres)), ref.real_modes),
            "mode_spread": math.sqrt(mean_square / inside_mean_square_radius())}


def _copies(images: torch.Tensor, ref: QualityReference) -> dict[str, float]:
    near = _nearest(_pixels(images[:2000]), ref.train_pixels)
    return {"copy_frac": float((near < ref.copy_threshold).float().mean())}


def copies_training(metrics: dict[str, float], ref: QualityReference) -> bool:
    """True when the generator copies training images well beyond the data's own near-duplicate rate."""
    return metrics.get("copy_frac", 0.0) > ref.copy_baseline + COPY_MARGIN


# ----- the entry point -------------------------------------------------------------------------------------------
@torch.no_grad()
def generate(model: Model, latent_dim: int, n: int, device: torch.device | str = "cpu", seed: int = 0) -> torch.Tensor:
    """n samples from the model in eval mode, from seeded latents, in batches."""
    device = torch.device(device)
    gen = torch.Generator(device).manual_seed(seed)
    latents = torch.randn(n, latent_dim, device=device, generator=gen)
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    out = torch.cat([model(latents[i:i + BATCH]).float() for i in range(0, n, BATCH)])
    if isinstance(model, nn.Module):
        model.train(was_training)
    return out


def quality(model: Model, data: Dataset, latent_dim: int, n_samples: int | None = None,
            ref: QualityReference | None = None, device: torch.device | str = "cpu", seed: int = 0
            ) -> dict[str, float]:
    """Generate samples from the model and score them against the data (pass `ref` to reuse one)."""
    ref = reference(data, device, seed) if ref is None else ref
    n = ref.default_samples if n_samples is None else n_samples
    if n < 2 * NEAREST_K:
        raise DataError(f"quality needs at least {2 * NEAREST_K} samples, got {n}")
    return score(generate(model, latent_dim, n, device, seed + 1), ref, seed)
