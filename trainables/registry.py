"""The model registry: a name maps to a frozen spec holding its seed config, presets and what data it trains on.

Plain data, no torch: the networks each name builds are in trainables.networks, imported when one is built, so the
diagnosis core and the commands can list and check models without loading the networks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trainables import defaults
from trainables.config import FIELDS, GanConfig
from trainables.errors import ConfigError
from trainables.vocabulary import BCE, WGAN

if TYPE_CHECKING:
    from torch import nn

    from trainables.networks import Networks


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    defaults: Mapping[str, Any]  # the seed config, field name -> value
    presets: Mapping[str, Mapping[str, Any]]  # preset name -> overrides on the defaults
    data_kind: str  # "image" or "points": which datasets it trains on
    sizes: Callable[[int], bool] = lambda size: size & (size - 1) == 0  # the image sides its networks build
    sizes_text: str = "a power of two"
    conditional: bool = False  # the networks read class labels: generator(z, y), critic(x, y)
    family: str = WGAN  # the objective's loss family: which diagnosis rules and remedy ladder apply
    packs: bool = False  # the critic can score groups of PACK samples (PacGAN)
    # data name -> overrides on the defaults for that data: the best config known for it (empty: none known)
    by_data: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def defaults_for(self, data: str | None) -> dict[str, Any]:
        """The base a command's preset and the user's values override: on a named `data`, the defaults with the best
        config known for that data on top; with none named, the defaults as they are (the seed row that the sweep
        and autofix tests pin)."""
        if data is None:
            return dict(self.defaults)
        return {**self.defaults, **self.by_data.get(data, {}), "data": data}

    def build_generator(self, cfg: GanConfig) -> nn.Module:
        return self._networks().generator(cfg)

    def build_critic(self, cfg: GanConfig) -> nn.Module:
        return self._networks().critic(cfg)

    def build_parts(self, cfg: GanConfig) -> dict[str, nn.Module]:
        """Every network this model trains, by name (the generator and critic, or more: the integrated system)."""
        return self._networks().build_parts(cfg)

    def make_trainer(self, cfg: GanConfig, data: Any, place: Any) -> Any:
        """This model's trainer on a Dataset and a Placement (trainables.trainer.Trainer, or its own loop)."""
        return self._networks().trainer(cfg, data, place)

    def objective(self, cfg: GanConfig) -> Any:
        """The loss object (critic_terms / generator_terms) of this model's family on `cfg`."""
        return self._networks().objective(cfg)

    def _networks(self) -> Networks:
        from trainables.networks import NETWORKS  # torch: loaded when a network is built, not when a name is read

        return NETWORKS[self.name]

    def prepare(self, cfg: GanConfig, labels: int | None) -> GanConfig:
        """The config these networks build from, on data with `labels` classes (None: unlabelled); raises
        ConfigError for PACK > 1 on a critic that cannot pack, an image side the networks cannot build, or a
        conditional model without classes."""
        if cfg.pack > 1 and not self.packs:
            raise ConfigError(f"PACK {cfg.pack}: {self.name}'s critic scores one sample at a time; "
                              f"packing (PacGAN) is a toy2d option, use PACK 1")
        if self.data_kind == "image" and not self.sizes(cfg.image_size):
            raise ConfigError(f"{self.name} builds images whose side is {self.sizes_text}; "
                              f"IMAGE_SIZE {cfg.image_size} is not")
        if not self.conditional:
            return cfg
        if labels is None:
            raise ConfigError(f"{self.name} is conditional and needs labelled data (sprites, digits, or "
                              f"folder:PATH with one subfolder per class); {cfg.data!r} has no classes")
        if labels < 2:
            raise ConfigError(f"{self.name} is conditional and needs at least 2 classes; {cfg.data!r} has {labels}")
        if cfg.num_classes not in (None, labels):
            raise ConfigError(f"NUM_CLASSES {cfg.num_classes} does not match the {labels} classes of {cfg.data!r}")
        return cfg.replace(num_classes=labels)


def _multiple_of_4(size: int) -> bool:
    return size % 4 == 0


def _integrated_size(size: int) -> bool:
    return size >= 16 and size & (size - 1) == 0


_MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (
        ModelSpec("wgan_small", defaults.WGAN_SMALL, defaults.PRESETS["wgan_small"], "image"),
        ModelSpec("wgan_large", defaults.WGAN_LARGE, defaults.PRESETS["wgan_large"], "image"),
        ModelSpec("toy2d", defaults.TOY2D, defaults.PRESETS["toy2d"], "points", packs=True,
                  by_data=defaults.TOY2D_BY_DATA),
        ModelSpec("dcgan", defaults.DCGAN, defaults.PRESETS["dcgan"], "image", _multiple_of_4, "a multiple of 4",
                  family=BCE),
        ModelSpec("cgan", defaults.CGAN, defaults.PRESETS["cgan"], "image", _multiple_of_4, "a multiple of 4",
                  conditional=True, family=BCE),
        ModelSpec("integrated", defaults.INTEGRATED, defaults.PRESETS["integrated"], "image", _integrated_size,
                  "a power of two from 16 (8x8 patches, a 2x2 discriminator output)", family=BCE),
    )
}


def model_names() -> list[str]:
    return sorted(_MODELS)


def get_model(name: str) -> ModelSpec:
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(model_names())}")
    return _MODELS[name]


# A loss family's training recipe: a model of another family brings its own (a BCE discriminator's label
# smoothing and RMSprop rates mean nothing to a WGAN-GP critic, and a critic's N_CRITIC 5 starves a BCE generator).
RECIPE_KEYS = ("optimizer", "beta1", "beta2", "learning_rate_g", "learning_rate_d", "n_critic", "critic_schedule",
               "lambda_gp", "d_train_ratio", "label_smoothing", "noise_std", "adaptive_lr_d", "d_dropout",
               "spectral_norm", "ema_decay")


def switch_model(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """`after` (a config whose MODEL may differ from `before`'s) made trainable by its model: the data, capacity
    and schedule stay; a model of another loss family takes its own recipe from its defaults; an image side the
    new networks cannot build grows to the next one they can (dcgan's 28 -> wgan_small's 32); an unconditional
    model drops NUM_CLASSES."""
    out = dict(after)
    if out.get("model") == before.get("model"):
        return out
    spec = get_model(out["model"])
    if before.get("model") not in _MODELS or get_model(before["model"]).family != spec.family:
        out.update({k: spec.defaults.get(k, FIELDS[k].default) for k in RECIPE_KEYS})
    if spec.data_kind == "image" and not spec.sizes(int(out.get("image_size", FIELDS["image_size"].default))):
        out["image_size"] = next(s for s in range(int(out["image_size"]), 1025) if spec.sizes(s))
    if not spec.conditional:
        out["num_classes"] = None
    if not spec.packs:
        out["pack"] = 1
    return out


def preset_overrides(spec: ModelSpec, presets: str) -> dict[str, Any]:
    """Overrides of one or more comma-separated presets, applied left to right (e.g. 'cpu,postmortem')."""
    merged: dict[str, Any] = {}
    for name in [p.strip() for p in presets.split(",") if p.strip()]:
        if name not in spec.presets:
            valid = ", ".join(sorted(spec.presets))
            raise ConfigError(f"unknown preset {name!r} for {spec.name}; valid presets: {valid}")
        merged.update(spec.presets[name])
    return merged
