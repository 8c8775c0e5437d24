"""The one vocabulary of gantune: loss families and per-epoch metric names. Plain data, no imports, so the
diagnosis core, the training loop, the tracker and the commands all read the same names.

The same per-epoch dict goes to losses.csv, to Ray Tune and to MLflow; the diagnosis reads it back from any.
"""

from __future__ import annotations

# Loss families: which per-epoch columns a trainer logs, which diagnosis rules and which remedy ladder apply.
WGAN = "wgan"  # WGAN-GP: a critic's scores, the Wasserstein estimate and the gradient penalty
BCE = "bce"  # a sigmoid discriminator trained with binary cross-entropy (guides 003/004)
FAMILIES = (WGAN, BCE)

# Column order of losses.csv: the seed's `epoch,d_loss,g_loss` first, then gantune's metrics. The loss
# columns depend on the loss family: WGAN critics report scores, W estimates and the penalty; BCE
# discriminators report probabilities D(real), D(fake), the real and fake halves of the loss and accuracies.
LOSS_METRICS = ("d_loss", "g_loss", "d_real", "d_fake", "gp", "grad_norm", "w_dist")
BCE_METRICS = ("d_loss", "g_loss", "d_real", "d_fake", "d_loss_real", "d_loss_fake", "d_acc", "d_acc_real",
               "d_acc_fake", "g_acc")
FAMILY_METRICS = {WGAN: LOSS_METRICS, BCE: BCE_METRICS}
SAMPLE_METRICS = ("out_min", "out_max", "out_range", "unique_frac", "sample_std", "diversity_ratio",
                  "duplicate_frac", "mean_shift", "color_ratio", "checkerboard_ratio", "sharpness_ratio",
                  "collapse_score")
# Quality and mode coverage (trainables.quality), every QUALITY_EVERY epochs; NaN where not computed or not
# applicable (modes_hit on unlabelled data, modes_captured on images...). `quality`: higher is better, 0..1.
QUALITY_METRICS = ("quality", "kid", "kid_std", "precision", "recall", "density", "coverage", "modes_hit",
                   "mode_kl", "copy_frac", "modes_captured", "high_quality_pct", "reverse_kl",
                   "mode_spread")
RUN_METRICS = ("lr_g", "lr_d", "epoch_time_s", "images_per_s", "quality_time_s")
COLUMNS = ("epoch",) + LOSS_METRICS + SAMPLE_METRICS + QUALITY_METRICS + RUN_METRICS  # a WGAN run's losses.csv
# The integrated system (guide 002, model `integrated`): one discriminator against two generators (a style
# generator and an NCA) and a transformer critic beside them. d_* are the discriminator's BCE terms against the style
# generator's fakes (*_nca: against the NCA's); g_bce and nca_bce are the adversarial halves of g_loss and
# nca_loss (without feature matching); t_phase is the index of the transformer's phase in
# trainables.integrated_schedules.PHASES; guide_score is guide 002's own 0-14 collapse diagnostic
# (trainables.integrated_score); the NCA's sample statistics carry the nca_ prefix.
INTEGRATED_LOSS_METRICS = ("d_loss", "g_loss", "nca_loss", "t_loss", "t_phase", "d_real", "d_fake", "d_fake_nca",
                           "d_loss_real", "d_loss_fake", "d_loss_fake_nca", "d_acc", "d_acc_real", "d_acc_fake",
                           "d_acc_fake_nca", "g_acc", "nca_acc", "g_bce", "nca_bce", "gp", "feature_match")
GUIDE_SCORE = "guide_score"
NCA_PREFIX = "nca_"
NCA_SAMPLE_METRICS = tuple(NCA_PREFIX + m for m in SAMPLE_METRICS + (GUIDE_SCORE,))
INTEGRATED_COLUMNS = (("epoch",) + INTEGRATED_LOSS_METRICS + SAMPLE_METRICS + (GUIDE_SCORE,) + NCA_SAMPLE_METRICS
                      + QUALITY_METRICS + RUN_METRICS)
ALL_METRICS = tuple(dict.fromkeys(LOSS_METRICS + BCE_METRICS + SAMPLE_METRICS + QUALITY_METRICS + RUN_METRICS
                                  + INTEGRATED_COLUMNS[1:]))


def columns(family: str) -> tuple[str, ...]:
    """losses.csv's columns for a loss family (WGAN or BCE)."""
    return ("epoch",) + FAMILY_METRICS[family] + SAMPLE_METRICS + QUALITY_METRICS + RUN_METRICS
