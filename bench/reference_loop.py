"""The plain seed-style loop gantune's epoch is measured against: the same networks and data, nothing else.

    python bench/reference_loop.py --model wgan_large --data folder:DIR --epochs 5 --set BATCH_SIZE=32 ...

One critic step per batch with the gradient penalty (Gulrajani et al. 2017), a generator step every N_CRITIC
batches, Adam at the config's rates: no augmentation, EMA, sample statistics, grids, quality or checkpoints.
It prints one `epoch N` line per epoch (flushed) as the epoch ends, as `gantune train` does, so the bench times
both the same way from outside. Run it as a user would run such a script: a plain `python` process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.config import GanConfig, build_config, parse_set  # noqa: E402
from trainables.data import load_dataset, to_float  # noqa: E402
from trainables.registry import get_model, preset_overrides  # noqa: E402


def penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """mean((||grad D(x_hat)|| - 1)^2) at random interpolates of real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.reshape(real.shape[0], -1).norm(dim=1) - 1) ** 2).mean()


def epoch(cfg: GanConfig, gen, critic, opt_g, opt_d, images: torch.Tensor) -> float:
    """One pass over the data; the last critic loss."""
    order = torch.randperm(images.shape[0])
    batches = order[: len(order) - len(order) % cfg.batch_size].view(-1, cfg.batch_size)
    for i, index in enumerate(batches):
        real = to_float(images[index])  # (B, C, H, W) in [-1, 1]
        with torch.no_grad():
            fake = gen(torch.randn(real.shape[0], cfg.latent_dim))
        d_loss = critic(fake).mean() - critic(real).mean() + cfg.lambda_gp * penalty(critic, real, fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if i % cfg.n_critic == 0:
            critic.requires_grad_(False)
            g_loss = -critic(gen(torch.randn(real.shape[0], cfg.latent_dim))).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            critic.requires_grad_(True)
    return float(d_loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wgan_large")
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--data", default="sprites")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    spec = get_model(args.model)
    cfg = build_config(spec.defaults, preset_overrides(spec, args.preset), {**parse_set(args.set), "data": args.data})
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.dataset_size)
    cfg, images = spec.prepare(cfg, data.num_modes), data.tensor  # (N, C, H, W) uint8
    torch.manual_seed(cfg.seed)
    gen, critic = spec.build_generator(cfg), spec.build_critic(cfg)
    opt_g = torch.optim.Adam(gen.parameters(), cfg.learning_rate_g, (cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(critic.parameters(), cfg.learning_rate_d, (cfg.beta1, cfg.beta2))
    start = time.perf_counter()
    for n in range(args.epochs):
        d_loss = epoch(cfg, gen, critic, opt_g, opt_d, images)
        print(f"epoch {n} d_loss {d_loss:.4f} {time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
