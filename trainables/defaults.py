"""The seed configs of each model and the named presets, as rows of data (field-name -> value).

A model's defaults are its seed project's config.py. A preset is a row of overrides applied on top of the
defaults; user flags then override the preset, key by key.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

_AUGMENT = {"horizontal_flip_prob": 0.5, "rotation_degrees": 10.0, "color_jitter": (0.1, 0.1, 0.1, 0.02)}

# WGAN_small as guide 001 describes it: equal learning rates, N_CRITIC 5, batch 64, 64 feature maps.
WGAN_SMALL = MappingProxyType({
    "model": "wgan_small", "data": "sprites", "image_size": 64, "latent_dim": 128,
    "gen_feature_maps": 64, "disc_feature_maps": 64, "batch_size": 64, "num_epochs": 2000,
    "learning_rate_g": 1e-4, "learning_rate_d": 1e-4, "n_critic": 5, "lambda_gp": 10.0,
    "ema_decay": None, "critic_schedule": "seed", "checkpoint_every": 50, **_AUGMENT,
})

# WGAN_large after post-mortem 000's fix (equal rates, batch 64, N_CRITIC 3, EMA 0.995): the seed
# project's config.py as it stands after that fix. The broken original is the `postmortem` preset.
WGAN_LARGE = MappingProxyType({
    "model": "wgan_large", "data": "sprites", "image_size": 64, "latent_dim": 128,
    "gen_feature_maps": 96, "disc_feature_maps": 96, "batch_size": 64, "num_epochs": 2000,
    "learning_rate_g": 1e-4, "learning_rate_d": 1e-4, "n_critic": 3, "lambda_gp": 10.0,
    "ema_decay": 0.995, "critic_schedule": "seed", "checkpoint_every": 50, **_AUGMENT,
})

# A small MLP WGAN-GP on 2-D mixtures (the WGAN-GP paper's toy setting at CPU scale).
TOY2D = MappingProxyType({
    "model": "toy2d", "data": "ring8", "latent_dim": 2, "gen_feature_maps": 128, "disc_feature_maps": 128,
    "batch_size": 64, "num_epochs": 60, "learning_rate_g": 5e-4, "learning_rate_d": 5e-4,
    "n_critic": 5, "lambda_gp": 1.0, "ema_decay": None, "critic_schedule": "standard",
    "horizontal_flip_prob": 0.0, "rotation_degrees": 0.0, "color_jitter": (0.0, 0.0, 0.0, 0.0),
    "num_samples": 512, "checkpoint_every": 20,
})

# The best configs known per mixture: what `bench/quality_anchors.py search` found (search_spaces/found/toy2d_DATA.json,
# whose values these rows must equal: tests/test_config.py checks). Over seeds 0-4 they find 8 of 8 and 25 of 25 modes
# at 95% high quality (BENCHMARKS.md's mode anchors); the TOY2D row alone gets 6 of 8 on the ring at 25%. A run on
# that data starts from its row, so a first run gets what gantune already knows.
_FOUND_SHARED = {"latent_dim": 32, "ema_decay": 0.99}
TOY2D_BY_DATA = MappingProxyType({
    "ring8": MappingProxyType({
        **_FOUND_SHARED, "gen_feature_maps": 256, "disc_feature_maps": 256, "num_epochs": 120,
        "learning_rate_g": 0.001174533385167001, "learning_rate_d": 0.0005554785332089605, "n_critic": 2,
        "lambda_gp": 0.9040863721922561, "lr_cooldown": 0.1,
    }),
    "grid25": MappingProxyType({
        **_FOUND_SHARED, "batch_size": 256, "num_epochs": 900,
        "learning_rate_g": 0.001358360264634518, "learning_rate_d": 0.0026858706191286792, "n_critic": 1,
        "lambda_gp": 1.9668220131403273, "lr_cooldown": 0.4,
    }),
})

_NO_AUGMENT = {"horizontal_flip_prob": 0.0, "rotation_degrees": 0.0, "color_jitter": (0.0, 0.0, 0.0, 0.0)}

# Guide 003's camel GAN (the "Generative Deep Learning" book): 28x28x1, latent 100, RMSprop with the
# discriminator at 8e-4 and the combined model at 4e-4, batch 64, dropout 0.4 in D; trained on the digits.
DCGAN = MappingProxyType({
    "model": "dcgan", "data": "digits", "image_size": 28, "channels": 1, "latent_dim": 100,
    "gen_feature_maps": 64, "disc_feature_maps": 64, "batch_size": 64, "num_epochs": 100,
    "optimizer": "rmsprop", "learning_rate_g": 4e-4, "learning_rate_d": 8e-4, "beta1": 0.0, "beta2": 0.9,
    "n_critic": 1, "critic_schedule": "seed", "d_dropout": 0.4, "ema_decay": None, "checkpoint_every": 10,
    **_NO_AUGMENT,
})

# Guide 004's conditional GAN after its fixes: LR_G 2e-4, LR_D 1e-4 (half), Adam beta1 0.5, label smoothing
# 0.1, instance noise 0.05, D every batch, the adaptive discriminator rate; sprites with their modes as classes.
CGAN = MappingProxyType({
    "model": "cgan", "data": "sprites", "image_size": 64, "channels": 3, "latent_dim": 100,
    "gen_feature_maps": 64, "disc_feature_maps": 64, "batch_size": 64, "num_epochs": 150,
    "optimizer": "adam", "learning_rate_g": 2e-4, "learning_rate_d": 1e-4, "beta1": 0.5, "beta2": 0.999,
    "n_critic": 1, "critic_schedule": "seed", "label_smoothing": 0.1, "noise_std": 0.05, "d_train_ratio": 1,
    "adaptive_lr_d": True, "ema_decay": None, "checkpoint_every": 10, **_NO_AUGMENT,
})

# Guide 002's integrated system after its fixes (issue 26): 64x64 RGB, z 64 (w 128), the generator's last stage 32
# wide (512 at 4x4), the discriminator's first 32 (512 at 2x2, the transformer 256 wide); rates G 5e-5, D 2e-4, NCA
# 2e-5, transformer 1e-4, Adam (0.5, 0.999); real labels 0.9, penalty 10, dropout 0.3 in D, feature matching 10,
# gradient norms clipped to 1; the code's D schedule and transformer cycle. The guide gives no batch size: 32.
_GUIDE_002_RATES = {"learning_rate_g": 5e-5, "learning_rate_d": 2e-4, "learning_rate_nca": 2e-5,
                    "learning_rate_t": 1e-4}
INTEGRATED = MappingProxyType({
    "model": "integrated", "data": "sprites", "image_size": 64, "channels": 3, "latent_dim": 64,
    "gen_feature_maps": 32, "disc_feature_maps": 32, "batch_size": 32, "num_epochs": 300,
    "optimizer": "adam", "beta1": 0.5, "beta2": 0.999, **_GUIDE_002_RATES, "n_critic": 1,
    "label_smoothing": 0.1, "lambda_gp": 10.0, "d_dropout": 0.3, "feature_matching": 10.0, "grad_clip": 1.0,
    "d_schedule": "code", "t_schedule": "cycle", "real_noise_std": 0.0, "ema_decay": None, "checkpoint_every": 10,
    **_NO_AUGMENT,
})

_CPU = {"image_size": 32, "gen_feature_maps": 16, "disc_feature_maps": 16, "num_epochs": 30,
        "checkpoint_every": 10}

# Presets per model: `seed` is the model's full seed config; `cpu` shrinks images, widths, data and epochs
# so an epoch of the embedded data takes seconds on two cores; `postmortem` is guide 000's broken config.
PRESETS: MappingProxyType[str, MappingProxyType[str, MappingProxyType[str, Any]]] = MappingProxyType({
    "wgan_small": MappingProxyType({
        "seed": MappingProxyType({}),
        "cpu": MappingProxyType(_CPU),
    }),
    "wgan_large": MappingProxyType({
        "seed": MappingProxyType({}),
        # EMA 0.99: a CPU run takes a few hundred generator steps, and 0.995 would still be mostly the
        # initial weights after them (guide 000: "0.999 barely moved in early epochs").
        "cpu": MappingProxyType({**_CPU, "ema_decay": 0.99}),
        "postmortem": MappingProxyType({"learning_rate_g": 1e-5, "learning_rate_d": 1e-4, "n_critic": 5,
                                        "batch_size": 32, "ema_decay": 0.999}),
    }),
    "dcgan": MappingProxyType({
        "seed": MappingProxyType({}),
        "cpu": MappingProxyType({"gen_feature_maps": 16, "disc_feature_maps": 16, "num_epochs": 20}),
        # guide 003's triage setting: the notebook's fixed batch of 1024
        "triage": MappingProxyType({"batch_size": 1024}),
    }),
    "cgan": MappingProxyType({
        "seed": MappingProxyType({}),
        "cpu": MappingProxyType({**_CPU, "num_epochs": 20}),
        # guide 004's run before its fixes: LR_D twice LR_G, no smoothing, no noise, a fixed rate
        "strong_d": MappingProxyType({"learning_rate_d": 4e-4, "label_smoothing": 0.0, "noise_std": 0.0,
                                      "adaptive_lr_d": False}),
    }),
    "integrated": MappingProxyType({
        "seed": MappingProxyType({}),
        # the structure at 32x32: four generator stages 64-32-16-8 wide, a 8-16-32-64 discriminator, a 64-wide
        # transformer on 16 patches, z 16 (w 32); 256 sprites a pass
        "cpu": MappingProxyType({"image_size": 32, "gen_feature_maps": 8, "disc_feature_maps": 8, "latent_dim": 16,
                                 "dataset_size": 256, "num_epochs": 300, "checkpoint_every": 25,
                                 "quality_every": 25}),
        # the guide's rates before its fix (all three at 2e-4) and after it
        "before": MappingProxyType({"learning_rate_g": 2e-4, "learning_rate_d": 2e-4, "learning_rate_nca": 2e-4}),
        "after": MappingProxyType(_GUIDE_002_RATES),
        # what the guide's text says beside its code: D 3x then 2x per step, noise on reals, the isolation schedule
        "text": MappingProxyType({"d_schedule": "text", "real_noise_std": 0.05, "t_schedule": "isolation"}),
    }),
    "toy2d": MappingProxyType({
        "seed": MappingProxyType({}),
        "cpu": MappingProxyType({}),
    }),
})
