"""The data module on real data: shapes, determinism, mode structure, folders, errors and augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainables.data import Dataset, augment, dataset_names, load_dataset, points, to_float
from trainables.data.digits import digit_images
from trainables.errors import ConfigError, DataError

SIZES = (16, 32, 64, 128)


# --- shapes and dtypes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_size", SIZES)
@pytest.mark.parametrize("spec", ["sprites", "digits", "stacked_digits"])
def test_image_datasets_have_the_requested_shape(spec: str, image_size: int) -> None:
    ds = load_dataset(spec, image_size, channels=3, size=96)
    assert isinstance(ds, Dataset)
    assert (ds.name, ds.kind) == (spec, "image")
    assert ds.tensor.dtype == torch.uint8
    assert ds.tensor.shape == (96, 3, image_size, image_size)
    assert ds.labels is not None and ds.labels.dtype == torch.int64 and ds.labels.shape == (96,)
    assert 0 <= int(ds.labels.min()) and int(ds.labels.max()) < ds.num_modes


@pytest.mark.parametrize("spec", ["sprites", "digits"])
def test_one_channel_is_the_luminance_of_three(spec: str) -> None:
    rgb = load_dataset(spec, 32, channels=3, size=48).tensor.float()
    grey = load_dataset(spec, 32, channels=1, size=48).tensor
    assert grey.shape == (48, 1, 32, 32) and grey.dtype == torch.uint8
    expected = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert (grey[:, 0].float() - expected).abs().max() <= 0.5 + 1e-3


def test_to_float_maps_0_255_onto_minus_one_one() -> None:
    values = to_float(torch.tensor([0, 255, 128], dtype=torch.uint8))
    assert values.dtype == torch.float32
    assert values.tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1.0], abs=1e-6)


def test_the_augment_submodule_does_not_replace_the_function() -> None:
    import trainables.data
    import trainables.data.augment  # noqa: F401

    assert trainables.data.augment is augment and callable(augment)


def test_dataset_names_list_every_spec() -> None:
    assert dataset_names() == ["sprites", "digits", "stacked_digits", "ring8", "grid25", "folder:PATH"]


# --- sprites -----------------------------------------------------------------------------------------------


def test_sprites_default_has_48_balanced_modes_on_white() -> None:
    ds = load_dataset("sprites", 64)
    assert ds.tensor.shape == (960, 3, 64, 64)
    assert ds.num_modes is not None and ds.num_modes >= 48 and ds.background == 1.0
    counts = torch.bincount(ds.labels, minlength=ds.num_modes)
    assert counts.min() == counts.max() == 960 // ds.num_modes
    corners = ds.tensor[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert bool((corners == 255).all())


def test_sprites_are_deterministic_by_seed() -> None:
    threads = torch.get_num_threads()
    first = load_dataset("sprites", 32, seed=3, size=96)
    assert torch.get_num_threads() == threads  # rendering runs on one thread and restores the setting
    again = load_dataset("sprites", 32, seed=3, size=96)
    other = load_dataset("sprites", 32, seed=4, size=96)
    assert torch.equal(first.tensor, again.tensor) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.tensor, other.tensor)


def test_sprites_in_a_mode_differ_but_stay_recognisable() -> None:
    ds = load_dataset("sprites", 32, size=960)
    x, y = ds.tensor.float() / 255, ds.labels
    assert len({tuple(img.flatten().tolist()) for img in ds.tensor[y == 0]}) == int((y == 0).sum())
    # nearest class mean on translation-invariant features (FFT magnitude), held out by alternate rounds
    features = torch.fft.fft2(1 - x).abs().flatten(1)
    features = features / features.norm(dim=1, keepdim=True)
    train = (torch.arange(len(y)) // ds.num_modes) % 2 == 0
    means = torch.stack([features[train & (y == k)].mean(0) for k in range(ds.num_modes)])
    predicted = torch.cdist(features[~train], means).argmin(1)
    accuracy = (predicted == y[~train]).float().mean().item()
    assert accuracy > 0.6, f"nearest-mean accuracy {accuracy:.2f} (chance {1 / ds.num_modes:.2f})"


# --- digits ------------------------------------------------------------------------------------------------


def test_digits_are_white_ink_on_black() -> None:
    ds = load_dataset("digits", 32, channels=1)
    assert ds.tensor.shape == (1797, 1, 32, 32)
    assert ds.background == -1.0 and ds.num_modes == 10
    assert sorted(ds.labels.unique().tolist()) == list(range(10))
    assert int(ds.tensor[:, :, 0, 0].max()) < 40 and int(ds.tensor.amax(dim=(1, 2, 3)).min()) > 200


def test_digits_subsample_is_deterministic() -> None:
    a, b = load_dataset("digits", 16, size=100, seed=1), load_dataset("digits", 16, size=100, seed=1)
    assert a.tensor.shape[0] == 100 and torch.equal(a.tensor, b.tensor)
    assert not torch.equal(a.labels, load_dataset("digits", 16, size=100, seed=2).labels)


def test_stacked_digits_channels_are_digits_named_by_the_label() -> None:
    ds = load_dataset("stacked_digits", 16, size=200)
    assert ds.num_modes == 1000 and ds.background == -1.0
    assert int(ds.labels.min()) >= 0 and int(ds.labels.max()) <= 999
    assert len(load_dataset("stacked_digits", 16).labels) == 10000
    singles, digit_labels = digit_images(16)
    flat = singles.flatten(1)  # (1797, 256)
    for sample, label in zip(ds.tensor[:20], ds.labels[:20].tolist(), strict=True):
        for channel, digit in zip(sample, (label // 100, label // 10 % 10, label % 10), strict=True):
            matches = (flat == channel.flatten()).all(dim=1)
            assert digit in digit_labels[matches].tolist()


def test_stacked_digits_needs_three_channels() -> None:
    with pytest.raises(DataError, match="channels=3"):
        load_dataset("stacked_digits", 16, channels=1)


# --- folders -----------------------------------------------------------------------------------------------


def _save(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _sprite_with_alpha(size: tuple[int, int]) -> Image.Image:
    """Fully transparent black except an opaque red square in the middle."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    w, h = size
    image.paste((255, 0, 0, 255), (w // 2 - 4, h // 2 - 4, w // 2 + 4, h // 2 + 4))
    return image


def test_folder_loads_mixed_formats_sizes_and_transparency(tmp_path: Path) -> None:
    _save(tmp_path / "a_alpha.png", _sprite_with_alpha((48, 32)))
    _save(tmp_path / "b_photo.JPG", Image.new("RGB", (20, 60), (0, 0, 255)))
    _save(tmp_path / "nested" / "deep" / "c.bmp", Image.new("L", (16, 16), 0))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = load_dataset(f"folder:{tmp_path}", 16)
    assert ds.tensor.shape == (3, 3, 16, 16) and ds.tensor.dtype == torch.uint8
    assert ds.labels is None and ds.num_modes is None and ds.background == 1.0
    alpha, photo, grey = ds.tensor.int()
    assert alpha[:, 0, 0].tolist() == [255, 255, 255]  # transparent -> white, not black
    assert alpha[0, 8, 8] > 200 and alpha[1, 8, 8] < 60  # the opaque red survives
    assert photo[2].min() > 200 and photo[0].max() < 60  # JPEG blue, resized and cropped
    assert int(grey.max()) == 0


def test_folder_composites_palette_transparency_onto_white(tmp_path: Path) -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (4, 4, 12, 12))
    image.save(tmp_path / "sprite.gif", transparency=0)
    pixels = load_dataset(f"folder:{tmp_path}", 16).tensor[0].int()
    assert pixels[:, 0, 0].tolist() == [255, 255, 255] and pixels[:, 8, 8].tolist() == [0, 255, 0]


def test_folder_scales_16_bit_grey_instead_of_clipping(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert load_dataset(f"folder:{tmp_path}", 8).tensor.unique().tolist() == [128]


def test_class_subfolders_give_labels(tmp_path: Path) -> None:
    _save(tmp_path / "dogs" / "b.png", Image.new("RGB", (8, 8), "white"))
    _save(tmp_path / "cats" / "a.png", Image.new("RGB", (8, 8), "black"))
    _save(tmp_path / "dogs" / "puppies" / "c.webp", Image.new("RGB", (8, 8), "gray"))
    ds = load_dataset(f"folder:{tmp_path}", 8, channels=1)
    assert ds.tensor.shape == (3, 1, 8, 8)
    assert ds.labels.tolist() == [0, 1, 1] and ds.num_modes == 2
    _save(tmp_path / "loose.png", Image.new("RGB", (8, 8), "red"))
    loose = load_dataset(f"folder:{tmp_path}", 8)
    assert loose.labels is None and loose.num_modes is None and len(loose.tensor) == 4


# --- errors ------------------------------------------------------------------------------------------------


def test_missing_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere"):
        load_dataset(f"folder:{missing}", 16)


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    _save(tmp_path / "one.png", Image.new("RGB", (8, 8)))
    with pytest.raises(DataError, match="one.png"):
        load_dataset(f"folder:{tmp_path / 'one.png'}", 16)


def test_empty_folder_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images here")
    with pytest.raises(DataError, match="empty"):
        load_dataset(f"folder:{tmp_path / 'empty'}", 16)


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    _save(tmp_path / "good.png", Image.new("RGB", (8, 8)))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(f"folder:{tmp_path}", 16)


def test_unknown_dataset_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*sprites.*folder:PATH"):
        load_dataset("cifar", 32)


@pytest.mark.parametrize(("image_size", "channels"), [(4, 3), (32, 2)])
def test_bad_image_arguments_are_named(image_size: int, channels: int) -> None:
    with pytest.raises(DataError, match=f"got {image_size if image_size == 4 else channels}"):
        load_dataset("sprites", image_size, channels=channels)


# --- points ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "modes", "std"), [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_points_lie_near_their_mode_centres(spec: str, modes: int, std: float) -> None:
    ds = load_dataset(spec, 64)
    assert (ds.kind, ds.num_modes, ds.background) == ("points", modes, 0.0)
    assert ds.tensor.shape == (10000, 2) and ds.tensor.dtype == torch.float32
    centres = points.mode_centres(spec)
    assert centres.shape == (modes, 2) and points.mode_std(spec) == std
    distance = (ds.tensor - centres[ds.labels]).norm(dim=1)
    assert float(distance.max()) < 6 * std
    assert torch.bincount(ds.labels, minlength=modes).min() >= 10000 // modes
    assert torch.equal(ds.tensor, load_dataset(spec, 64).tensor)


def test_point_mode_layouts() -> None:
    ring = points.mode_centres("ring8")
    assert ring.norm(dim=1).tolist() == pytest.approx([1.0] * 8)
    assert sorted(set(points.mode_centres("grid25").flatten().tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    with pytest.raises(DataError, match="moons"):
        points.mode_std("moons")


# --- augmentation ------------------------------------------------------------------------------------------


def _batch(channels: int = 3, n: int = 16, side: int = 32) -> torch.Tensor:
    return torch.rand(n, channels, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


STRONG = {"flip_prob": 0.5, "rotation_degrees": 30.0, "color_jitter": (0.4, 0.4, 0.4, 0.1), "background": 1.0}


def test_augment_is_deterministic_given_the_generator() -> None:
    batch = _batch()
    first, again = augment(batch, **STRONG, generator=_gen(1)), augment(batch, **STRONG, generator=_gen(1))
    assert torch.equal(first, again)
    assert not torch.equal(first, augment(batch, **STRONG, generator=_gen(2)))


def test_augment_with_zero_strengths_returns_the_input() -> None:
    batch = _batch()
    assert augment(batch, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0), 1.0, _gen(0)) is batch


def test_augment_flip_mirrors_every_image_at_probability_one() -> None:
    batch = _batch()
    assert torch.equal(augment(batch, 1.0, 0.0, (0.0, 0.0, 0.0, 0.0), 1.0, _gen(0)), batch.flip(-1))


@pytest.mark.parametrize("background", [1.0, -1.0])
def test_rotation_fills_corners_with_the_background(background: float) -> None:
    batch = torch.full((64, 3, 32, 32), 0.2)
    out = augment(batch, 0.0, 45.0, (0.0, 0.0, 0.0, 0.0), background, _gen(0))
    corners = out[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]  # (B, C, 4)
    filled = (corners - background).abs().amax(dim=(1, 2)) < 1e-5
    assert filled.float().mean() > 0.5  # all but the images turned by only a few degrees
    low, high = sorted((0.2, background))
    assert float(out.min()) >= low - 1e-5 and float(out.max()) <= high + 1e-5
    assert torch.allclose(out[:, :, 16, 16], torch.full((64, 3), 0.2))  # the centre stays content


@pytest.mark.parametrize("channels", [1, 3])
def test_augment_output_stays_in_range(channels: int) -> None:
    out = augment(_batch(channels), 0.5, 30.0, (0.9, 0.9, 0.9, 0.5), 1.0, _gen(3))
    assert out.shape == (16, channels, 32, 32) and out.dtype == torch.float32
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0


def test_saturation_and_hue_leave_grey_images_alone() -> None:
    grey = _batch(1).expand(-1, 3, -1, -1)
    out = augment(grey, 0.0, 0.0, (0.0, 0.0, 0.5, 0.5), 1.0, _gen(0))
    assert torch.allclose(out, grey, atol=1e-5)


def test_hue_shift_changes_colour_but_keeps_luma() -> None:
    batch = _batch()
    out = augment(batch, 0.0, 0.0, (0.0, 0.0, 0.0, 0.25), 1.0, _gen(0))
    luma = torch.tensor([0.299, 0.587, 0.114])
    assert not torch.allclose(out, batch, atol=1e-3)
    inside = (out > -1 + 1e-4).all(dim=1) & (out < 1 - 1e-4).all(dim=1)  # where no channel was clamped
    diff = torch.einsum("bchw,c->bhw", out - batch, luma)
    assert diff[inside].abs().max() < 1e-4


def test_bad_augment_strengths_are_named() -> None:
    with pytest.raises(ConfigError, match="1.5"):
        augment(_batch(), 1.5, 0.0, (0.0, 0.0, 0.0, 0.0), 1.0, _gen(0))
