# A seed-style config for the example trainer: UPPER_CASE constants that train.py imports.
# The mistake: the critic learns 5x slower than the generator and trains once per generator step, so the
# generator dominates (guide 001, section 1: d_loss climbs to a large positive number).
DATA_MODES = 8  # a ring of 8 Gaussians
DATA_POINTS = 2000
LATENT_DIM = 2
HIDDEN = 64
BATCH_SIZE = 64
NUM_EPOCHS = 20
LEARNING_RATE_G = 5e-4
LEARNING_RATE_D = 1e-4
N_CRITIC = 1
LAMBDA_GP = 2.0
SEED = 0
