"""Tests for medr1.data.images (validation, loading, DICOM) and medr1.embedded.sample_images."""

from __future__ import annotations

import io
import os
import shutil
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageFile
from pydicom.data import get_testdata_file

from medr1.data.images import (
    MAX_IMAGE_PIXELS,
    check_image,
    dicom_to_image,
    load_image,
    to_rgb8,
    window_to_uint8,
)
from medr1.embedded.sample_images import sample_images, synthetic_dermoscopy, synthetic_oct
from medr1.sources.omnimedvqa import MODALITIES


def _dcm(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} not installed")
    return path


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _gray(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.float64)


def _assert_rgb(im: Image.Image, size: tuple[int, int]) -> None:
    assert im.mode == "RGB"
    assert im.size == size


# --------------------------------------------------------------------------- check_image


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    Image.fromarray(_noise((64, 64, 3))).save(r / "good.png")
    Image.fromarray(_noise((64, 64, 3))).save(r / "good.jpg", quality=90)
    return r


def _png_with_size(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR (with a correct CRC) claims width x height."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_check_image_good(root: Path) -> None:
    assert check_image(root, "good.png") is None
    assert check_image(root, "good.jpg") is None
    sub = root / "sub"
    sub.mkdir()
    (sub / "in.png").symlink_to(root / "good.png")  # symlink staying inside root is fine
    assert check_image(root, "sub/in.png") is None
    assert check_image(str(root), "good.png") is None


def test_check_image_jpeg_zero_padding_ok(root: Path) -> None:
    (root / "pad.jpg").write_bytes((root / "good.jpg").read_bytes() + b"\x00" * 100)
    assert check_image(root, "pad.jpg") is None


def test_check_image_missing_empty_not_image(root: Path) -> None:
    assert check_image(root, "nope.png") == "image missing"
    (root / "dir.png").mkdir()
    assert check_image(root, "dir.png").startswith("image missing")
    (root / "empty.png").write_bytes(b"")
    assert check_image(root, "empty.png") == "image empty"
    (root / "text.png").write_text("this is not a picture\n" * 20)
    assert check_image(root, "text.png").startswith("not an image")


@pytest.mark.parametrize("name", ["good.png", "good.jpg"])
def test_check_image_truncated(root: Path, name: str) -> None:
    data = (root / name).read_bytes()
    (root / f"cut_{name}").write_bytes(data[: len(data) // 2])
    assert check_image(root, f"cut_{name}").startswith("image truncated")


def test_check_image_path_escapes(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    shutil.copy(root / "good.png", outside)
    (root / "link.png").symlink_to(outside)
    assert check_image(root, "link.png") == "path escapes root"
    assert check_image(root, "../outside.png") == "path escapes root"
    assert check_image(root, "sub/../good.png") == "path escapes root"
    assert check_image(root, str(root / "good.png")) == "path escapes root"
    assert check_image(root, "/etc/passwd") == "path escapes root"
    assert check_image(root, "..\\outside.png") == "path escapes root"
    assert check_image(root, "C:\\data\\good.png") == "path escapes root"
    # A symlinked directory escaping root counts too.
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(root / "good.png", tmp_path / "elsewhere" / "x.png")
    (root / "linkdir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert check_image(root, "linkdir/x.png") == "path escapes root"


def test_check_image_too_large(root: Path) -> None:
    (root / "big.png").write_bytes(_png_with_size(20_000, 20_000))  # 4e8 > 1e8 default
    (root / "bomb.png").write_bytes(_png_with_size(60_000, 60_000))  # over PIL's own hard limit
    (root / "ok.png").write_bytes(_png_with_size(5_000, 5_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL must not warn either
        assert check_image(root, "big.png").startswith("image too large")
        assert check_image(root, "bomb.png").startswith("image too large")
        # The size check happens before the tail check: the patched IHDR still ends with IEND.
        assert check_image(root, "ok.png") is None
    assert check_image(root, "good.jpg", max_pixels=64 * 64 - 1).startswith("image too large")
    assert check_image(root, "good.jpg", max_pixels=64 * 64) is None
    assert MAX_IMAGE_PIXELS == 100_000_000


def test_check_image_never_decodes_pixels(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self, *args, **kwargs):
        raise AssertionError("check_image decoded pixel data")

    monkeypatch.setattr(Image.Image, "load", boom)
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    data = (root / "good.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert check_image(root, "good.png") is None
    assert check_image(root, "good.jpg") is None
    assert check_image(root, "cut.jpg").startswith("image truncated")
    start = time.perf_counter()
    for _ in range(300):
        check_image(root, "good.png")
    assert time.perf_counter() - start < 1.5  # ~0.2 ms each; generous for a shared CPU


def test_check_image_dicom(root: Path) -> None:
    shutil.copy(_dcm("CT_small.dcm"), root / "ct.dcm")
    assert check_image(root, "ct.dcm") is None
    assert check_image(root, "ct.dcm", max_pixels=100).startswith("image too large")


# --------------------------------------------------------------------------- load_image: modes


def _save(im: Image.Image, path: Path, **kw) -> Path:
    im.save(path, **kw)
    return path


def test_load_image_16bit_low_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 4095, 128)[None, :] + rng.normal(0, 50, (128, 128))
    arr = np.clip(ramp, 0, 4095).astype(np.uint16)
    path = _save(Image.fromarray(arr), tmp_path / "low.png")
    assert Image.open(path).mode.startswith("I;16")
    g = _gray(load_image(path, size=None))
    assert g.std() > 20 and g.mean() > 40, "12-bit data in a 16-bit PNG must not come out black"
    # Monotone: the ramp still goes from dark (left) to bright (right).
    assert g[:, :16].mean() + 100 < g[:, -16:].mean()


def test_load_image_16bit_high_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    arr = rng.integers(60000, 65536, (96, 96)).astype(np.uint16)
    g = _gray(load_image(_save(Image.fromarray(arr), tmp_path / "high.png"), size=64))
    assert g.std() > 20 and g.mean() < 215, "values in 60000..65535 must not come out all white"


def test_load_image_8bit_contrast_kept(tmp_path: Path) -> None:
    arr = np.tile(np.arange(100, 111, dtype=np.uint8), (8, 1))
    g = _gray(load_image(_save(Image.fromarray(arr, "L"), tmp_path / "l.png"), size=None))
    assert g.min() == 100 and g.max() == 110  # 8-bit data is displayed as stored, not stretched


def test_load_image_constant_high_depth(tmp_path: Path) -> None:
    for value, expect in ((0, 0), (1234, 128)):
        path = _save(Image.fromarray(np.full((16, 16), value, np.uint16)), tmp_path / f"c{value}.png")
        g = _gray(load_image(path, size=None))
        assert np.all(g == expect)


def test_load_image_float_tiff_with_nan(tmp_path: Path) -> None:
    arr = np.linspace(-1.5, 3.0, 40 * 30, dtype=np.float32).reshape(30, 40)
    arr[0, 0] = np.nan
    path = _save(Image.fromarray(arr, "F"), tmp_path / "f.tif")
    assert Image.open(path).mode == "F"
    im = load_image(path, size=32)
    _assert_rgb(im, (32, 32))
    assert _gray(im).std() > 20


def test_load_image_int32_and_big_endian(tmp_path: Path) -> None:
    arr = (np.arange(64 * 64).reshape(64, 64) * 37 - 50_000).astype(np.int32)
    path = _save(Image.fromarray(arr, "I"), tmp_path / "i32.tif")
    assert Image.open(path).mode == "I"
    assert _gray(load_image(path, size=None)).std() > 20
    big = Image.frombytes("I;16B", (64, 32), (np.arange(64 * 32, dtype=">u2") * 2).tobytes())
    g = _gray(to_rgb8(big))
    assert g.std() > 20 and g[:, 0].mean() < g[:, -1].mean()


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("1", "png"),
        ("L", "png"),
        ("LA", "png"),
        ("P", "png"),
        ("PA", None),
        ("RGB", "jpg"),
        ("RGBA", "png"),
        ("CMYK", "jpg"),
        ("YCbCr", "jpg"),
        ("I;16", "png"),
    ],
)
def test_load_image_modes_to_rgb(tmp_path: Path, mode: str, fmt: str | None) -> None:
    base = Image.fromarray(_noise((48, 40, 3), seed=3))
    im = base.quantize(16) if mode in ("P", "PA") else base.convert(mode if mode != "I;16" else "L")
    if mode == "PA":
        im = im.convert("PA")
    if mode == "I;16":
        im = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 16)
    if fmt is None:
        out = to_rgb8(im)  # no common file format stores PA; test the converter directly
        _assert_rgb(out, (40, 48))
        return
    path = _save(im, tmp_path / f"x_{mode.replace(';', '')}.{fmt}")
    out = load_image(path, size=100)
    _assert_rgb(out, (100, 100))
    assert np.asarray(out).std() > 10


def test_load_image_rgba_composited_on_black(tmp_path: Path) -> None:
    arr = np.zeros((20, 20, 4), np.uint8)
    arr[..., :3] = 200
    arr[:, 10:, 3] = 255  # right half opaque, left half fully transparent
    out = np.asarray(load_image(_save(Image.fromarray(arr, "RGBA"), tmp_path / "a.png"), size=None))
    assert out[:, :10].max() == 0 and out[:, 10:].min() == 200


def test_load_image_palette_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (10, 10), 1)
    im.putpalette([255, 255, 255, 0, 200, 0] + [0] * 762)
    im.paste(0, (0, 0, 5, 10))
    path = _save(im, tmp_path / "pt.png", transparency=0)  # palette index 0 (white) is transparent
    out = np.asarray(load_image(path, size=None))
    assert out[:, :5].max() == 0 and tuple(out[0, 7]) == (0, 200, 0)


def test_load_image_exif_orientation(tmp_path: Path) -> None:
    im = Image.fromarray(_noise((20, 40, 3)))  # 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = _save(im, tmp_path / "rot.jpg", exif=exif)
    assert Image.open(path).size == (40, 20)
    assert load_image(path, size=None).size == (20, 40)


def test_load_image_default_size_and_errors(tmp_path: Path) -> None:
    path = _save(Image.fromarray(_noise((30, 50, 3))), tmp_path / "r.png")
    _assert_rgb(load_image(path), (384, 384))
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="bad.png"):
        load_image(bad)
    with pytest.raises(ValueError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    data = (tmp_path / "r.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_window_to_uint8_robust() -> None:
    arr = np.zeros((100, 100), np.float32)
    arr[40:42, 40:42] = 1000.0  # tiny bright object in a flat image: min/max fallback keeps it
    out = window_to_uint8(arr)
    assert out.max() == 255 and out.min() == 0
    hot = np.random.default_rng(0).normal(1000, 100, (200, 200))
    hot[0, 0] = 1e9  # one hot pixel must not flatten the rest
    assert window_to_uint8(hot).std() > 40


# --------------------------------------------------------------------------- DICOM


def test_dicom_ct_16bit_has_contrast() -> None:
    ds = pydicom.dcmread(_dcm("CT_small.dcm"))
    assert ds.BitsStored == 16 and ds.pixel_array.dtype.itemsize == 2
    im = dicom_to_image(_dcm("CT_small.dcm"))
    _assert_rgb(im, (128, 128))
    g = _gray(im)
    assert g.std() > 20 and 5 < g.mean() < 250
    via_load = load_image(_dcm("CT_small.dcm"), size=64)  # load_image dispatches DICOM too
    _assert_rgb(via_load, (64, 64))


def test_dicom_monochrome1_inverted_exactly(tmp_path: Path) -> None:
    ds = pydicom.dcmread(_dcm("MR_small.dcm"))
    mono2 = np.asarray(dicom_to_image(_dcm("MR_small.dcm")))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    mono1 = np.asarray(dicom_to_image(tmp_path / "m1.dcm"))
    assert np.array_equal(mono1.astype(int), 255 - mono2.astype(int))


def test_dicom_real_monochrome1_radiograph_inverted() -> None:
    path = _dcm("RG1_UNCI.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    raw = ds.pixel_array[::8, ::8].astype(np.float64).ravel()
    shown = _gray(dicom_to_image(path))[::8, ::8].ravel()
    # High stored values mean dark on a MONOCHROME1 film: display must anti-correlate with storage.
    assert np.corrcoef(raw, shown)[0, 1] < -0.9
    assert shown.std() > 20


def test_dicom_colour_and_palette() -> None:
    palette = np.asarray(dicom_to_image(_dcm("examples_palette.dcm")))
    assert palette.shape == (350, 800, 3)
    rgb = np.asarray(dicom_to_image(_dcm("examples_rgb_color.dcm"))).astype(int)
    assert rgb.shape == (240, 320, 3)
    # Colour Doppler: some clearly red/orange pixels, i.e. channels not all equal.
    assert np.mean(rgb[..., 0] - rgb[..., 2] > 60) > 0.01
    ybr = np.asarray(dicom_to_image(_dcm("examples_ybr_color.dcm")))  # multi-frame: middle frame
    assert ybr.shape == (240, 320, 3) and ybr.std() > 10


def test_dicom_undecodable_raises_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    with pytest.raises(ValueError, match="bad.dcm"):
        dicom_to_image(bad)


# --------------------------------------------------------------------------- sample_images


@pytest.mark.parametrize("modality", MODALITIES)
def test_sample_images_all_modalities(modality: str) -> None:
    images = sample_images(modality, size=96)
    assert len(images) >= 2
    for im in images:
        _assert_rgb(im, (96, 96))
        assert np.asarray(im).std() > 10


def test_sample_images_cached_copies_and_aliases() -> None:
    first = sample_images("X-Ray", size=64)
    first[0].paste((255, 0, 0), (0, 0, 64, 64))
    again = sample_images("x-ray", size=64)
    assert np.asarray(again[0]).std() > 10  # caller mutations do not leak into the cache
    assert len(sample_images("CT(Computed Tomography)", 32)) == len(sample_images("CT", 32))
    with pytest.raises(ValueError, match="unknown modality"):
        sample_images("PET")


def test_procedural_images_deterministic() -> None:
    for make in (synthetic_oct, synthetic_dermoscopy):
        a, b, c = (np.asarray(make(seed, 64)) for seed in (0, 0, 1))
        assert np.array_equal(a, b) and not np.array_equal(a, c)
    oct_img = np.asarray(synthetic_oct(0, 128)).astype(int)
    assert np.array_equal(oct_img[..., 0], oct_img[..., 2])  # OCT is grayscale
    assert oct_img[:10].mean() < oct_img[40:90].mean()  # dark vitreous above bright retina
    derm = np.asarray(synthetic_dermoscopy(0, 128)).astype(int)
    assert derm[:4, :4].mean() < 30  # dark vignette corners
    centre = derm[54:74, 54:74].mean(axis=(0, 1))
    assert centre[0] > centre[2] and centre.mean() < derm[30, 64].mean()  # brown lesion, darker


def test_pydicom_import_is_lazy() -> None:
    import subprocess
    import sys

    code = "import sys, medr1.data.images; assert 'pydicom' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
