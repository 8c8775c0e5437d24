"""A seed-layout trainer: `python train.py [--epochs N] [--lr LR] [--device cpu] [--resume CHECKPOINT]`, run from
models/ringgan/. It imports the shared `common` package two levels up, reads config.py beside it, appends
`epoch,d_loss,g_loss` to OUTPUT_DIR/losses.csv after every epoch (a WGAN-GP on a ring of 8 Gaussians), and saves
a sample scatter to SAMPLE_DIR and a checkpoint to CHECKPOINT_DIR every few epochs."""

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import config as C  # noqa: E402, I001  (the config.py beside this script)
import torch  # noqa: E402
from common.dataset import load_points  # noqa: E402
from torch import nn  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=C.NUM_EPOCHS)
    p.add_argument("--lr", type=float, help="both learning rates (overrides a resumed optimiser's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", help="a checkpoint_epoch_XXXX.pt to continue from")
    return p.parse_args()


def mlp(inputs, outputs):
    return nn.Sequential(nn.Linear(inputs, C.HIDDEN), nn.ReLU(), nn.Linear(C.HIDDEN, C.HIDDEN), nn.ReLU(),
                         nn.Linear(C.HIDDEN, outputs))


def gradient_penalty(critic, real, fake):
    alpha = torch.rand(real.size(0), 1)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def train_epoch(data, gen, critic, opt_g, opt_d):
    d_losses, g_losses = [], []
    for i, real in enumerate(data[torch.randperm(len(data))].split(C.BATCH_SIZE)):
        fake = gen(torch.randn(real.size(0), C.LATENT_DIM)).detach()
        d_loss = critic(fake).mean() - critic(real).mean() + C.LAMBDA_GP * gradient_penalty(critic, real, fake)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        d_losses.append(d_loss.item())
        if i % C.N_CRITIC == 0:
            g_loss = -critic(gen(torch.randn(C.BATCH_SIZE, C.LATENT_DIM))).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            g_losses.append(g_loss.item())
    return sum(d_losses) / len(d_losses), sum(g_losses) / len(g_losses)


def save_samples(gen, epoch, size=64):
    """A scatter of 500 generated points on [-3, 3]^2 as SAMPLE_DIR/epoch_XXXX.png."""
    from PIL import Image

    with torch.no_grad():
        points = gen(torch.randn(500, C.LATENT_DIM))
    pixels = ((points.clamp(-3, 3) + 3) / 6 * (size - 1)).round().long().tolist()
    image = Image.new("L", (size, size), 255)
    for x, y in pixels:
        image.putpixel((x, size - 1 - y), 0)
    image.save(os.path.join(C.SAMPLE_DIR, f"epoch_{epoch:04d}.png"))


def main():
    args = parse_args()
    torch.manual_seed(C.SEED)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    data = load_points(C.DATA_DIR)
    gen, critic = mlp(C.LATENT_DIM, 2), mlp(2, 1)
    opt_g = torch.optim.Adam(gen.parameters(), C.LEARNING_RATE_G, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), C.LEARNING_RATE_D, betas=(0.0, 0.9))
    start = 0
    if args.resume:  # the optimisers' state comes back with their old learning rates: only --lr overrides them
        state = torch.load(args.resume)
        for module, key in ((gen, "gen"), (critic, "critic"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        start = state["epoch"] + 1
    if args.lr is not None:
        for group in opt_g.param_groups + opt_d.param_groups:
            group["lr"] = args.lr
    os.makedirs(C.CHECKPOINT_DIR, exist_ok=True)
    os.makedirs(C.SAMPLE_DIR, exist_ok=True)
    log = os.path.join(C.OUTPUT_DIR, "losses.csv")
    if not args.resume:
        with open(log, "w", newline="") as f:
            csv.writer(f).writerow(["epoch", "d_loss", "g_loss"])
    for epoch in range(start, args.epochs):
        d_loss, g_loss = train_epoch(data, gen, critic, opt_g, opt_d)
        with open(log, "a", newline="") as f:
            csv.writer(f).writerow([epoch, d_loss, g_loss])
        if (epoch + 1) % C.SAMPLE_EVERY == 0:
            save_samples(gen, epoch)
        if (epoch + 1) % C.CHECKPOINT_EVERY == 0:
            torch.save({"gen": gen.state_dict(), "critic": critic.state_dict(), "opt_g": opt_g.state_dict(),
                        "opt_d": opt_d.state_dict(), "epoch": epoch},
                       os.path.join(C.CHECKPOINT_DIR, f"checkpoint_epoch_{epoch:04d}.pt"))
        print(f"epoch {epoch} d_loss {d_loss:.4f} g_loss {g_loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
