"""An example of a user's own WGAN-GP trainer, in the seed projects' style: it reads config.py beside it and
appends `epoch,d_loss,g_loss` to losses.csv in its working directory after every epoch."""

import csv
import math
import os

import config as C  # noqa: I001  (the user's config.py beside this script)
import torch
from torch import nn


def ring(n, modes, generator):
    angle = torch.randint(0, modes, (n,), generator=generator).float() * (2 * math.pi / modes)
    centers = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * 2.0
    return centers + 0.02 * torch.randn(n, 2, generator=generator)


def mlp(inputs, hidden, outputs):
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def gradient_penalty(critic, real, fake):
    alpha = torch.rand(real.size(0), 1)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def main():
    torch.manual_seed(C.SEED)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    data = ring(C.DATA_POINTS, C.DATA_MODES, torch.Generator().manual_seed(C.SEED))
    gen, critic = mlp(C.LATENT_DIM, C.HIDDEN, 2), mlp(2, C.HIDDEN, 1)
    opt_g = torch.optim.Adam(gen.parameters(), C.LEARNING_RATE_G, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), C.LEARNING_RATE_D, betas=(0.0, 0.9))
    with open("losses.csv", "w", newline="") as f:
        csv.writer(f).writerow(["epoch", "d_loss", "g_loss"])
    for epoch in range(C.NUM_EPOCHS):
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
        with open("losses.csv", "a", newline="") as f:
            csv.writer(f).writerow([epoch, sum(d_losses) / len(d_losses), sum(g_losses) / len(g_losses)])
        print(f"epoch {epoch} d_loss {d_losses[-1]:.4f} g_loss {g_losses[-1]:.4f}", flush=True)


if __name__ == "__main__":
    main()
