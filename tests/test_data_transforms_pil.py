"""torchvision-style transforms with PIL images in and out (issue 16): ToPILImage,
PILToTensor, ConvertImageDtype, Grayscale, ColorJitter, RandomRotation, RandomResizedCrop,
and the antialiased Resize checked against Pillow itself."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import fnarray as fa
from fnarray.data import transforms as T

Image = pytest.importorskip("PIL.Image")
ImageEnhance = pytest.importorskip("PIL.ImageEnhance")


def _rgb(h=23, w=31, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(10, 17), (64, 20), (50, 90), (7, 64)])
def test_resize_matches_pillow(size):
    x = _rgb(37, 53)
    oh, ow = size
    for mode, code in (("bilinear", Image.BILINEAR), ("nearest", Image.NEAREST)):
        ref = np.asarray(Image.fromarray(x).resize((ow, oh), code)).astype(int)
        ours = T.Resize(size, interpolation=mode)(x).astype(int)
        tol = 0 if mode == "nearest" else 1  # Pillow's 8-bit fixed point vs our float64
        assert np.abs(ours - ref).max() <= tol
        pil_out = T.Resize(size, interpolation=mode)(Image.fromarray(x))
        assert isinstance(pil_out, Image.Image) and pil_out.mode == "RGB"
        assert np.abs(np.asarray(pil_out).astype(int) - ref).max() <= tol
    gray = x[..., 0]
    ref = np.asarray(Image.fromarray(gray).resize((ow, oh), Image.BILINEAR)).astype(int)
    assert np.abs(T.Resize(size)(gray).astype(int) - ref).max() <= 1
    tensor_out = T.Resize(size)(fa.asarray(np.moveaxis(x, -1, 0)))
    assert tensor_out.shape == (3, oh, ow)
    ref = np.asarray(Image.fromarray(x).resize((ow, oh), Image.BILINEAR)).astype(int)
    assert np.abs(np.moveaxis(np.asarray(tensor_out), 0, -1).astype(int) - ref).max() <= 1


def test_resize_float_images_match_pillow_mode_f():
    x = np.random.default_rng(1).random((40, 30)).astype(np.float32)
    ref = np.asarray(Image.fromarray(x, mode="F").resize((11, 13), Image.BILINEAR))
    np.testing.assert_allclose(T.Resize((13, 11))(x), ref, atol=1e-5)


def test_resize_int_size_keeps_aspect_like_torchvision():
    img = Image.fromarray(_rgb(30, 45))
    out = T.Resize(20)(img)
    assert out.size == (30, 20)  # PIL size is (w, h); long side int(20 * 45 / 30)
    assert T.Resize(20, max_size=25)(img).size == (25, 16)
    with pytest.raises(ValueError, match="interpolation must be"):
        T.Resize(4, interpolation="lanczos")


def test_to_pil_image_and_pil_to_tensor():
    x = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(3, 2, 3)
    img = T.ToPILImage()(fa.asarray(x))
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (3, 2)
    # float values become uint8 by x * 255 truncated, as torchvision's pic.mul(255).byte()
    np.testing.assert_array_equal(np.asarray(img), (np.moveaxis(x, 0, -1) * 255).astype(np.uint8))
    back = T.PILToTensor()(img)
    assert tuple(back.shape) == (3, 2, 3) and np.asarray(back).dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(back), (x * 255).astype(np.uint8))
    gray = T.ToPILImage()(np.full((4, 5), 7, np.uint8))
    assert gray.mode == "L" and gray.size == (5, 4)
    assert T.ToPILImage()(fa.asarray(np.zeros((1, 2, 2), np.float32))).mode == "L"
    assert T.ToPILImage(mode="F")(fa.asarray(np.zeros((1, 2, 2), np.float32))).mode == "F"
    assert T.ToPILImage()(np.zeros((2, 2, 4), np.uint8)).mode == "RGBA"
    with pytest.raises(TypeError, match="expected a PIL image"):
        T.PILToTensor()(np.zeros((2, 2), np.uint8))
    # ToTensor takes PIL images too, scaling uint8 to [0, 1]
    t = T.ToTensor()(img)
    np.testing.assert_allclose(np.asarray(t), (x * 255).astype(np.uint8) / 255, atol=1e-7)


def test_convert_image_dtype_like_torchvision():
    conv = T.ConvertImageDtype
    u8 = fa.asarray(np.array([[[0, 128, 255]]], np.uint8))
    np.testing.assert_allclose(np.asarray(conv(np.float32)(u8)), [[[0, 128 / 255, 1.0]]])
    f = fa.asarray(np.array([[[0.0, 0.5, 1.0]]], np.float32))
    np.testing.assert_array_equal(np.asarray(conv(np.uint8)(f)), [[[0, 127, 255]]])
    np.testing.assert_array_equal(np.asarray(conv(np.int32)(u8)),
                                  [[[0, 128 * 2 ** 23, 255 * 2 ** 23]]])
    i32 = fa.asarray(np.array([[[2 ** 31 - 1]]], np.int32))
    np.testing.assert_array_equal(np.asarray(conv(np.uint8)(i32)), [[[255]]])


def test_grayscale_pil_and_tensor():
    x = _rgb()
    img = Image.fromarray(x)
    out = T.Grayscale()(img)
    assert out.mode == "L"
    np.testing.assert_array_equal(np.asarray(out), np.asarray(img.convert("L")))
    assert T.Grayscale(3)(img).mode == "RGB"
    red = fa.asarray(np.array([255, 0, 0], np.uint8).reshape(3, 1, 1))
    assert int(np.asarray(T.Grayscale()(red))[0, 0, 0]) == 76  # 0.2989 * 255 truncated
    assert T.Grayscale(3)(red).shape == (3, 1, 1)
    assert T.Grayscale()(x).shape == (23, 31, 1)
    with pytest.raises(ValueError, match="3 channels"):
        T.Grayscale()(fa.asarray(np.zeros((2, 4, 4), np.float32)))


def test_color_jitter_fixed_factors():
    x = np.random.default_rng(2).random((3, 4, 5)).astype(np.float32)
    out = np.asarray(T.ColorJitter(brightness=(1.5, 1.5))(fa.asarray(x)))
    np.testing.assert_allclose(out, np.clip(x * 1.5, 0, 1), rtol=1e-6)
    gray = 0.2989 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    out = np.asarray(T.ColorJitter(contrast=(0.0, 0.0))(fa.asarray(x)))
    np.testing.assert_allclose(out, np.full_like(x, gray.mean()), rtol=1e-5)
    out = np.asarray(T.ColorJitter(saturation=(0.0, 0.0))(fa.asarray(x)))
    np.testing.assert_allclose(out, np.broadcast_to(gray, x.shape), rtol=1e-5)
    red = fa.asarray(np.array([1.0, 0.0, 0.0], np.float32).reshape(3, 1, 1))
    green = np.asarray(T.ColorJitter(hue=(1 / 3, 1 / 3))(red)).reshape(3)
    np.testing.assert_allclose(green, [0.0, 1.0, 0.0], atol=1e-6)
    img = Image.fromarray(_rgb())
    ours = T.ColorJitter(brightness=(0.7, 0.7))(img)
    assert isinstance(ours, Image.Image)
    np.testing.assert_array_equal(np.asarray(ours),
                                  np.asarray(ImageEnhance.Brightness(img).enhance(0.7)))
    with pytest.raises(ValueError, match="non negative"):
        T.ColorJitter(brightness=-1)


def test_color_jitter_is_seeded_and_random():
    x = fa.asarray(np.random.default_rng(3).random((3, 6, 6)).astype(np.float32))
    jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1, generator=5)
    a = np.asarray(jitter(x))
    b = np.asarray(T.ColorJitter(0.4, 0.4, 0.4, 0.1, generator=5)(x))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.asarray(jitter(x)))
    assert a.min() >= 0 and a.max() <= 1


def test_random_rotation_matches_pillow():
    x = _rgb(23, 31)
    for angle in (30.0, -45.0, 90.0):
        for expand in (False, True):
            rot = T.RandomRotation((angle, angle), expand=expand)
            ref = np.asarray(Image.fromarray(x).rotate(angle, Image.NEAREST, expand=expand))
            np.testing.assert_array_equal(rot(x), ref)
            out = rot(Image.fromarray(x))
            assert isinstance(out, Image.Image)
            np.testing.assert_array_equal(np.asarray(out), ref)
    bil = T.RandomRotation((17.5, 17.5), interpolation="bilinear")(x).astype(int)
    ref = np.asarray(Image.fromarray(x).rotate(17.5, Image.BILINEAR)).astype(int)
    assert np.abs(bil - ref).max() <= 1
    square = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    out = T.RandomRotation((90, 90))(fa.asarray(square))
    np.testing.assert_array_equal(np.asarray(out)[0], np.rot90(square[0]))
    filled = T.RandomRotation((45, 45), fill=9)(np.zeros((5, 5), np.uint8))
    assert filled[0, 0] == 9 and filled[2, 2] == 0


def test_random_resized_crop():
    x = _rgb(40, 40)
    whole = T.RandomResizedCrop(20, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x)
    np.testing.assert_array_equal(whole, T.Resize((20, 20))(x))
    crop = T.RandomResizedCrop((8, 12), generator=0)
    a, b = crop(x), T.RandomResizedCrop((8, 12), generator=0)(x)
    assert a.shape == (8, 12, 3)
    np.testing.assert_array_equal(a, b)
    top, left, h, w = T.RandomResizedCrop(10).get_params(40, 40, np.random.default_rng(0))
    assert 0 < h <= 40 and 0 < w <= 40 and 0.08 * 1600 * 0.9 <= h * w <= 1600
    assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
    # No draw fits an extreme image: the centre crop clamps the aspect ratio.
    assert T.RandomResizedCrop(4, scale=(2.0, 2.0)).get_params(
        10, 100, np.random.default_rng(0)) == (0, 43, 10, 13)
    out = T.RandomResizedCrop(16)(Image.fromarray(x))
    assert isinstance(out, Image.Image) and out.size == (16, 16)


def test_missing_pillow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"fnarray\[images\]"):
        T.ToPILImage()(fa.asarray(np.zeros((1, 2, 2), np.float32)))
