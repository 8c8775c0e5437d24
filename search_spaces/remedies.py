"""The remedy ladder as data: for each loss family and diagnosis, the guides' changes, stage by stage.

Stages follow the guides' order: 1 LAMBDA_GP, 2 N_CRITIC and the learning rates, 3 architecture, 4 capacity
(BCE, guide 004: 1 the discriminator's learning rate, 2 label smoothing and instance noise, 3 D_TRAIN_RATIO,
4 the discriminator's architecture (dropout, spectral norm), 5 the Wasserstein loss).
A `Remedy` says how to move one parameter: set it, scale it, match another, add to it, climb a rung of the
guide's sequence of values (`rung`: LR_D 1e-4 then 5e-5; the first value past the current one, so a config
already at 1e-4 gets 5e-5 and one past the last rung gets no step), step toward the canonical value (`toward`:
the guide's factor, or most of the way back at once when the value is far from it: a rate 20x the canonical one
comes back to 2x, not to 10x), or rise to a multiple of another parameter's new value (`above`: 004's LR_G at
twice LR_D); `low`/`high` keep the result on the safe side (e.g. N_CRITIC never below 1).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

STAGES = MappingProxyType({1: "LAMBDA_GP", 2: "N_CRITIC and learning rates", 3: "architecture", 4: "capacity"})
BCE_STAGES = MappingProxyType({1: "discriminator learning rate", 2: "label smoothing and instance noise",
                               3: "D_TRAIN_RATIO", 4: "discriminator architecture", 5: "Wasserstein loss"})
STAGE_NAMES = MappingProxyType({"wgan": STAGES, "bce": BCE_STAGES})


@dataclasses.dataclass(frozen=True)
class Remedy:
    stage: int
    parameter: str  # the guides' UPPER_CASE name
    op: str  # "set", "scale", "match" (take another parameter's value), "add", "rung" (arg: the guide's values)
    arg: Any
    reason: str
    low: float | str | None = None  # the result is kept within [low, high]; CANON: the canonical value
    high: float | str | None = None
    words: str | None = None  # a MODEL switch in the guides' terms, for a trainer that is not gantune's
    when: tuple[str, Any] | None = None  # (parameter, value): only where the config holds that value


# `toward`: a value more than FAR times from its canonical one (in the step's direction) moves to
# canonical * (old / canonical) ** KEEP, three quarters of the way back on a log scale, when that goes further
# than the guide's factor: halving a rate 20x too high leaves it 10x too high (issue 23's unstable toy2d run).
FAR = 4.0
KEEP = 0.25
CANON = "canonical"  # as a Remedy's `low`/`high`: the model's seed value (toy2d's LAMBDA_GP 1, an image GAN's 10)
# The canonical values `toward` steps to when the model is not gantune's (a gantune model's seed config holds its
# own): WGAN-GP's rates, penalty and critic steps (001 2.1-2.3: WGAN_small's equal 1e-4, LAMBDA_GP 10, N_CRITIC 5),
# 004's BCE rates.
CANONICAL = MappingProxyType({
    "wgan": MappingProxyType({"LEARNING_RATE_G": 1e-4, "LEARNING_RATE_D": 1e-4, "LAMBDA_GP": 10.0, "N_CRITIC": 5}),
    "bce": MappingProxyType({"LEARNING_RATE_G": 2e-4, "LEARNING_RATE_D": 1e-4}),
})


R = Remedy
_LR_G, _LR_D = "LEARNING_RATE_G", "LEARNING_RATE_D"
# 001 2.3: "Adam betas (0.0, 0.9) are correct for WGAN-GP, do not change them": a config that did is put back with
# the rates (hot betas (0.9, 0.99) make the critic's steps overshoot as a hot rate does)
_ADAM = ("OPTIMIZER", "adam")
_BETAS = (
    R(2, "BETA1", "set", 0.0, "001 2.3: Adam betas (0.0, 0.9) are correct for WGAN-GP", when=_ADAM),
    R(2, "BETA2", "set", 0.9, "001 2.3: Adam betas (0.0, 0.9) are correct for WGAN-GP", when=_ADAM),
)

WGAN = MappingProxyType({
    "discriminator_dominant": (
        R(1, "LAMBDA_GP", "scale", 0.5, "000 If It Collapses Again (3): the critic is already regularised", low=1.0),
        R(2, _LR_G, "match", _LR_D, "000: the critic learned 50x faster; equal rates work in WGAN_small"),
        R(2, "N_CRITIC", "add", -2, "000: the generator updates more often relative to the critic", low=1),
        R(2, "BATCH_SIZE", "set", 64, "000: more stable gradient-penalty estimates; matches small", low=64),
        R(2, "EMA_DECAY", "set", 0.995, "000: faster EMA warm-up; 0.999 barely moved in early epochs"),
        *_BETAS,
        R(3, "MODEL", "set", "wgan_large", "001 4.2-4.3: Upsample+Conv instead of ConvTranspose",
          words="in the generator, Upsample + Conv2d instead of ConvTranspose2d (001 4.3)"),
        R(4, "GEN_FEATURE_MAPS", "scale", 1.5, "001 2.6: a stronger generator; grow G with D", high=512),
    ),
    "generator_dominant": (
        R(1, "LAMBDA_GP", "scale", 0.5, "001 2.1: a lighter penalty lets the failing critic fit", low=1.0),
        R(2, "N_CRITIC", "add", 2, "001 2.2: the critic must be more trained than the generator", high=10),
        R(2, _LR_G, "scale", 0.5, "001 2.3: halve LR_G when the generator outruns the critic"),
        R(2, _LR_D, "toward", 1.0, "001 1: the critic is failing; a critic rate far from the canonical one "
                                   "comes most of the way back (004 Generator Too Strong: increase LR_D)"),
        *_BETAS,
        R(3, "MODEL", "set", "wgan_large", "001 5: the large critic (spectral norm, residual blocks) is stronger",
          words="a stronger critic: spectral norm and LayerNorm, residual blocks (001 5)"),
        R(4, "DISC_FEATURE_MAPS", "match", "GEN_FEATURE_MAPS", "001 2.6: G and D grow together"),
    ),
    "mode_collapse": (
        R(1, "LAMBDA_GP", "set", 10.0, "001 2.1: the canonical penalty before anything else"),
        R(2, "N_CRITIC", "add", 2, "001 4.1 (1): increase N_CRITIC from 5 to 7-10", high=10),
        R(2, _LR_G, "scale", 0.5, "001 4.1 (3): lower LR_G"),
        *_BETAS,
        R(3, "MODEL", "set", "wgan_large", "001 4.2: residual blocks and self-attention",
          words="residual blocks and self-attention in the generator (001 4.2)"),
        R(4, "LATENT_DIM", "scale", 2, "001 4.1 (2): LATENT_DIM 128 -> 256", high=512),
        R(4, "GEN_FEATURE_MAPS", "scale", 1.5, "001 4.1 (4): increase GEN_FEATURE_MAPS", high=512),
    ),
    "unstable": (
        R(1, "LAMBDA_GP", "scale", 2.0, "001 2.1: wild oscillations -> increase 10 -> 20 (at least canonical)",
          low=CANON, high=50.0),
        R(2, _LR_G, "toward", 0.5, "001 1: both losses oscillate -> learning rate too high"),
        R(2, _LR_D, "toward", 0.5, "001 2.3: if d_loss explodes, halve LR_D"),
        R(2, "N_CRITIC", "toward", 1.0, "001 2.2: the critic must be more trained than the generator (5 standard); "
                                        "one far below its canonical value comes most of the way back", low=1),
        *_BETAS,
        R(2, "BATCH_SIZE", "set", 64, "001 2.4: unstable even with high LAMBDA_GP -> 32 -> 64", low=64),
        R(3, "MODEL", "set", "wgan_large", "001 5: spectral norm + LayerNorm double regularisation",
          words="spectral norm + LayerNorm in the critic (001 5)"),
    ),
    # a healthy run's sample-quality warnings (tuner.core.diagnosis.QUALITY_WARNINGS)
    "checkerboard": (
        R(3, "MODEL", "set", "wgan_large", "001 4.3: Upsample+Conv2d instead of ConvTranspose2d ends the grid",
          words="in the generator, Upsample + Conv2d instead of ConvTranspose2d (001 4.3)"),
    ),
    "blurry": (
        R(2, _LR_G, "scale", 0.5, "001 4.2 (3): lower LR_G slightly to slow down the generator"),
        R(3, "MODEL", "set", "wgan_large", "001 4.2 (2): residual blocks and self-attention",
          words="residual blocks and self-attention in the generator (001 4.2)"),
    ),
    "diverged": (
        R(1, "LAMBDA_GP", "scale", 2.0, "001 4.4 (2): increase LAMBDA_GP 10 -> 20 (at least the canonical value)",
          low=CANON, high=50.0),
        R(2, _LR_G, "toward", 0.2, "001 4.4 (1): lower learning rates by 5-10x"),
        R(2, _LR_D, "toward", 0.2, "001 4.4 (1): lower learning rates by 5-10x"),
        *_BETAS,
        R(3, "MODEL", "set", "wgan_large", "001 4.4 (4): LayerNorm, not BatchNorm, in the critic",
          words="LayerNorm, not BatchNorm, in the critic (001 4.4)"),
    ),
})

_LR_D_RUNGS = (1e-4, 5e-5)  # 004 Solution 1, then Tuning Guide Step 1
_SMOOTHING_RUNGS = (0.1, 0.2)  # 004 Solution 2, then Step 2
_NOISE_RUNGS = (0.05, 0.1)  # 004 Solution 3, then Step 4
_WASSERSTEIN = "004 Architecture (3): use the Wasserstein loss (wgan_small, WGAN-GP)"
# 004 Solution 1 sets LR_D to HALF of LR_G: a slow generator is raised to twice the discriminator's new rate (the
# rung above may have just lowered it); one already at or above that keeps its rate
_G_ABOVE_D = R(1, "LR_G", "above", ("LR_D", 2.0), "004 Solution 1: LR_D is HALF of LR_G (2e-4 and 1e-4)")

BCE = MappingProxyType({
    # guide 004's order: LR_D, label smoothing, instance noise, D_TRAIN_RATIO; then the architecture
    "discriminator_dominant": (
        R(1, "LR_D", "rung", _LR_D_RUNGS, "004 Solution 1 / Step 1: lower LR_D to 1e-4, then 5e-5"),
        _G_ABOVE_D,
        R(2, "LABEL_SMOOTHING", "rung", _SMOOTHING_RUNGS, "004 Solution 2 / Step 2: real labels 0.9, then 0.8"),
        R(2, "NOISE_STD", "rung", _NOISE_RUNGS, "004 Solution 3 / Step 4: instance noise 0.05, then 0.1"),
        R(3, "D_TRAIN_RATIO", "rung", (2,), "004 Solution 4 / Step 3: train D every 2 batches"),
        R(4, "D_DROPOUT", "rung", (0.4, 0.5), "004 Architecture (1): dropout in D makes it weaker"),
        R(4, "SPECTRAL_NORM", "set", True, "004 Architecture (2): spectral norm limits D's power"),
        R(5, "MODEL", "set", "wgan_small", _WASSERSTEIN,
          words="the Wasserstein loss with a gradient penalty (WGAN-GP) instead of BCE (004)"),
    ),
    # guide 003's collapse (D loss stuck near 0.73, D accuracy 50%, G accuracy 99%): a BCE collapse, treated
    # with 004's ladder; a smaller batch between the rates and the architecture (003: batch size amplifies it)
    "mode_collapse": (
        R(1, "LR_D", "rung", _LR_D_RUNGS, "004 Summary: lower LR_D first"),
        _G_ABOVE_D,
        R(2, "LABEL_SMOOTHING", "rung", _SMOOTHING_RUNGS, "004 Step 2: increase label smoothing"),
        R(2, "NOISE_STD", "rung", _NOISE_RUNGS, "004 Step 4: more noise"),
        R(3, "BATCH_SIZE", "scale", 0.5, "003 Interpret Results: large batches amplify poor initialisation", low=16),
        R(4, "SPECTRAL_NORM", "set", True, "004 Architecture (2): spectral norm"),
        R(5, "MODEL", "set", "wgan_small", _WASSERSTEIN,
          words="the Wasserstein loss with a gradient penalty (WGAN-GP) instead of BCE (004)"),
    ),
    "generator_dominant": (
        R(1, "LR_D", "scale", 2.0, "004 Generator Too Strong: increase LR_D", high=3e-4),
        R(3, "D_TRAIN_RATIO", "set", 1, "004 Generator Too Strong: train D every batch"),
        R(4, "D_DROPOUT", "set", 0.0, "004 Architecture (1) reversed: dropout weakens D, which is already losing"),
    ),
    "unstable": (
        R(1, "LR_D", "toward", 0.5, "004 Oscillation: slow the discriminator"),
        R(2, "LABEL_SMOOTHING", "rung", _SMOOTHING_RUNGS, "004 Solution 2"),
        R(4, "SPECTRAL_NORM", "set", True, "004 Architecture (2): spectral norm"),
        R(5, "MODEL", "set", "wgan_small", "004 Architecture (3): the Wasserstein loss is more stable than BCE",
          words="the Wasserstein loss with a gradient penalty (WGAN-GP) instead of BCE (004)"),
    ),
    "diverged": (
        R(1, "LR_D", "toward", 0.2, "001 4.4 (1): lower learning rates by 5-10x"),
        R(1, "LR_G", "toward", 0.2, "001 4.4 (1): lower learning rates by 5-10x"),
        R(5, "MODEL", "set", "wgan_small", _WASSERSTEIN,
          words="the Wasserstein loss with a gradient penalty (WGAN-GP) instead of BCE (004)"),
    ),
})

# Guide 002's integrated system (model `integrated`: a style generator and an NCA against one discriminator, a
# transformer critic beside them), in the guide's order: 1 rebalance the rates, 2 the discriminator's step schedule,
# 3 regularisation (label smoothing, noise on reals, gradient penalty, dropout), 4 the transformer's isolation,
# 5 architecture. It replaces its family's (BCE) ladder for that model (`ladder_for`).
INTEGRATED_STAGES = MappingProxyType({1: "learning rates", 2: "discriminator step schedule", 3: "regularisation",
                                      4: "transformer isolation", 5: "architecture"})
_REBALANCE = (
    R(1, _LR_G, "scale", 0.25, "002 1: GEN_LR 2e-4 -> 5e-5, a 4x reduction, prevents collapse", low=1e-6),
    R(1, "LEARNING_RATE_NCA", "scale", 0.1, "002 1: NCA_LR 2e-4 -> 2e-5, a 10x reduction, stable growth", low=1e-7),
    R(1, _LR_D, "set", 2e-4, "002 1: DISC_LR stays at the standard 2e-4, which maintains balance"),
)
_REGULARISE = (
    R(3, "LABEL_SMOOTHING", "rung", (0.1,), "002 3: real labels 0.9, not 1.0"),
    R(3, "REAL_NOISE_STD", "rung", (0.05,), "002 3: noise N(0, 0.05) on the real images"),
    R(3, "LAMBDA_GP", "rung", (10.0,), "002 3: gradient penalty, WGAN-GP style, weight 10"),
    R(3, "D_DROPOUT", "rung", (0.3,), "002 5: dropout 0.3 in the discriminator prevents overfitting"),
)
_ISOLATE = (
    R(4, "T_SCHEDULE", "set", "isolation", "002 4: the transformer isolated for epochs 1-250, then integrated"),
    R(4, "T_INTEGRATION", "set", 0.0, "002 4: no transformer signal in the generator's loss while it learns"),
)
_ARCHITECTURE = (
    R(5, "GEN_FEATURE_MAPS", "scale", 1.5, "002 5: an enhanced generator holds its own against the discriminator",
      high=512),
)
INTEGRATED = MappingProxyType({
    "mode_collapse": _REBALANCE + (
        R(2, "D_SCHEDULE", "set", "text", "002 2: D 3x per generator step in epochs 1-100, 2x later"),
    ) + _REGULARISE + _ISOLATE + _ARCHITECTURE,
    "discriminator_dominant": _REBALANCE + (
        R(2, "D_SCHEDULE", "set", "code", "002 2 (its trainer): D every batch, then every other batch from epoch 50"),
    ) + _REGULARISE + _ISOLATE + _ARCHITECTURE,
    "generator_dominant": (
        R(1, _LR_D, "scale", 2.0, "002 1: the generator must not outrun the discriminator", high=4e-4),
        R(2, "D_SCHEDULE", "set", "text", "002 2: D 3x per generator step in epochs 1-100, 2x later"),
        R(3, "D_DROPOUT", "set", 0.0, "002 5 reversed: dropout weakens D, which is already losing"),
    ),
    "unstable": (
        R(1, _LR_G, "scale", 0.5, "002 1: slower rates for stable learning"),
        R(1, "LEARNING_RATE_NCA", "scale", 0.5, "002 1: slower rates for stable learning"),
    ) + _REGULARISE + _ISOLATE,
    "diverged": (
        R(1, _LR_G, "scale", 0.2, "001 4.4 (1): lower learning rates by 5-10x"),
        R(1, _LR_D, "scale", 0.2, "001 4.4 (1): lower learning rates by 5-10x"),
        R(1, "LEARNING_RATE_NCA", "scale", 0.2, "001 4.4 (1): lower learning rates by 5-10x"),
    ) + _REGULARISE,
})

LADDERS = MappingProxyType({"wgan": WGAN, "bce": BCE})
# A model whose networks have knobs its family's ladder does not know brings its own ladder and stage names.
MODEL_LADDERS = MappingProxyType({"integrated": INTEGRATED})
MODEL_STAGE_NAMES = MappingProxyType({"integrated": INTEGRATED_STAGES})


def ladder_for(family: str, model: Any = None) -> MappingProxyType:
    """The remedy ladder of a run: its model's own when it has one, else its loss family's."""
    return MODEL_LADDERS.get(model, LADDERS[family])


def stage_names_for(family: str, model: Any = None) -> MappingProxyType:
    return MODEL_STAGE_NAMES.get(model, STAGE_NAMES[family])
# Names the same parameter goes by in users' configs (the seed projects and guide 004 use both).
ALIASES = MappingProxyType({"LEARNING_RATE_G": ("LR_G",), "LEARNING_RATE_D": ("LR_D",), "LR_G": ("LEARNING_RATE_G",),
                            "LR_D": ("LEARNING_RATE_D",)})

# How `autofix --apply` searches around each step's value: the guide's exact value is the stage's first trial;
# Optuna then tries values within these bounds of it. ("log", f): [v/f, v*f] on a log scale; ("int", d):
# [v-d, v+d]; ("choices", (...)): these values and the guide's; ("linear", lo, hi): a fixed range.
AROUND = MappingProxyType({
    "LAMBDA_GP": ("log", 2.0),
    "LEARNING_RATE_G": ("log", 3.0), "LEARNING_RATE_D": ("log", 3.0), "LR_G": ("log", 3.0), "LR_D": ("log", 3.0),
    "N_CRITIC": ("int", 2), "D_TRAIN_RATIO": ("int", 1),
    "BATCH_SIZE": ("choices", (32, 64, 128)),
    "EMA_DECAY": ("choices", (None, 0.99, 0.995, 0.999)),
    "LATENT_DIM": ("choices", (64, 128, 256)),
    "GEN_FEATURE_MAPS": ("scale_choices", (1.0, 1.5, 2.0)), "DISC_FEATURE_MAPS": ("scale_choices", (1.0, 1.5, 2.0)),
    "LABEL_SMOOTHING": ("linear", 0.0, 0.3), "NOISE_STD": ("linear", 0.0, 0.2), "D_DROPOUT": ("linear", 0.0, 0.6),
    "LEARNING_RATE_NCA": ("log", 3.0), "REAL_NOISE_STD": ("linear", 0.0, 0.2),
    "D_SCHEDULE": ("choices", ("code", "text")), "T_SCHEDULE": ("choices", ("cycle", "isolation")),
    "T_INTEGRATION": ("linear", 0.0, 0.5),
})
# A stage whose only change is not searchable (MODEL) searches these around the current values instead: a new
# architecture moves the best learning rates (guide 001 5: WGAN_large wants its own rates).
FALLBACK = ("LEARNING_RATE_D", "LEARNING_RATE_G")
