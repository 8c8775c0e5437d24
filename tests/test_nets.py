"""The networks: the seed project's exact parameter counts, shapes at every size, EMA with buffers."""

from __future__ import annotations

import pytest
import torch

from trainables.config import build_config
from trainables.ema import Ema
from trainables.losses import gradient_penalty
from trainables.nets.layers import SelfAttention, parameter_count
from trainables.registry import get_model


@pytest.mark.parametrize("model, gen, critic", [
    ("wgan_small", 3_806_080, 2_878_464),
    ("wgan_large", 8_559_961, 21_231_481),
])
def test_parameter_counts_at_seed_defaults(model, gen, critic):
    spec = get_model(model)
    cfg = build_config(spec.defaults)
    assert (cfg.image_size, cfg.latent_dim) == (64, 128)
    assert parameter_count(spec.build_generator(cfg)) == gen
    assert parameter_count(spec.build_critic(cfg)) == critic


@pytest.mark.parametrize("model", ["wgan_small", "wgan_large"])
@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_image_networks_scale_with_image_size(model, size):
    spec = get_model(model)
    cfg = build_config(spec.defaults, {"image_size": size, "gen_feature_maps": 4, "disc_feature_maps": 4,
                                       "latent_dim": 8})
    fake = spec.build_generator(cfg)(torch.randn(3, 8))
    assert fake.shape == (3, 3, size, size)
    assert fake.abs().max() <= 1.0  # tanh output
    assert spec.build_critic(cfg)(fake).shape == (3, 1)


def test_toy2d_maps_latents_to_points_and_points_to_scores():
    spec = get_model("toy2d")
    cfg = build_config(spec.defaults)
    points = spec.build_generator(cfg)(torch.randn(5, cfg.latent_dim))
    assert points.shape == (5, 2)
    assert spec.build_critic(cfg)(points).shape == (5, 1)


def test_a_packing_toy2d_critic_scores_groups_of_pack_samples_jointly():
    spec = get_model("toy2d")
    cfg = build_config(spec.defaults, {"pack": 4})
    critic = spec.build_critic(cfg)
    points = torch.randn(8, 2)
    assert critic(points).shape == (2, 1)
    assert critic[1].in_features == 8  # four points side by side
    swapped = points.clone()
    swapped[0], swapped[1] = points[1].clone(), points[0].clone()  # two points inside one group trade places
    assert not torch.allclose(critic(swapped)[0], critic(points)[0])  # the group is one input, not a bag of four
    assert torch.allclose(critic(swapped)[1], critic(points)[1])  # the other group is untouched
    with pytest.raises(ValueError, match="PACK 4"):
        critic(points[:6])


def test_the_gradient_penalty_takes_one_norm_per_packed_group():
    spec = get_model("toy2d")
    critic = spec.build_critic(build_config(spec.defaults, {"pack": 2}))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    penalty, norm = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    alpha = torch.rand((6, 1), generator=torch.Generator().manual_seed(0))
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    groups = grad.reshape(3, 4).norm(dim=1)  # each group's two points' gradients form one 4-vector
    assert torch.allclose(norm, groups.mean(), atol=1e-6)
    assert torch.allclose(penalty, ((groups - 1) ** 2).mean(), atol=1e-6)


def test_wgan_large_attention_starts_as_identity():
    spec = get_model("wgan_large")
    cfg = build_config(spec.defaults, {"image_size": 16, "gen_feature_maps": 8, "disc_feature_maps": 8})
    gammas = [m.gamma for m in spec.build_generator(cfg).modules() if hasattr(m, "gamma")]
    assert gammas and all(float(g.detach()) == 0.0 for g in gammas)


def test_attention_is_sagans_formula_and_differentiates_twice():
    """out_i = x_i + gamma * sum_j softmax_j(q_i . k_j) v_j, and the gradient penalty's double backward through it
    matches finite differences (float64, a 3x3 map)."""
    torch.manual_seed(0)
    attention = SelfAttention(8).double()
    torch.nn.init.constant_(attention.gamma, 0.7)
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64, requires_grad=True)
    q, k, v = (conv(x).flatten(2) for conv in (attention.query, attention.key, attention.value))  # (B, C', HW)
    weights = torch.softmax(torch.einsum("bci,bcj->bij", q, k), dim=-1)  # (B, HW, HW): row i over positions j
    expected = x + 0.7 * torch.einsum("bij,bcj->bci", weights, v).reshape(x.shape)
    assert torch.allclose(attention(x), expected)
    assert torch.autograd.gradgradcheck(attention, (x,))


def test_ema_averages_parameters_and_copies_batchnorm_statistics():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    ema = Ema(net, decay=0.5)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net(torch.randn(16, 4) * 3 + 5)  # a training-mode forward moves the running statistics
    before = ema.model[0].weight.clone()
    ema.update(net)
    assert torch.allclose(ema.model[0].weight, 0.5 * before + 0.5 * net[0].weight)
    assert torch.equal(ema.model[1].running_mean, net[1].running_mean)
    assert torch.equal(ema.model[1].running_var, net[1].running_var)
