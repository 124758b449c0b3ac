"""Real medical sample pictures per OmniMedVQA modality, available fully offline.

CT, MRI, X-ray and ultrasound come from the DICOM test files shipped in the `pydicom` and
`pydicom-data` wheels; fundus and microscopy from `skimage.data`. No installable package ships
OCT or dermoscopy images, so those two are generated procedurally (deterministic per seed).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from medr1.data.images import dicom_to_image, window_to_uint8
from medr1.sources.omnimedvqa import MODALITIES, RAW_MODALITY

log = logging.getLogger(__name__)

# (file name, accepted DICOM Modality tags). Files live in pydicom/data/test_files or pydicom-data.
DICOM_SOURCES: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "CT": (
        ("CT_small.dcm", frozenset({"CT"})),  # 128x128 CT slice
        ("J2K_pixelrep_mismatch.dcm", frozenset({"CT"})),  # 512x512 head CT (JPEG 2000)
        ("explicit_VR-UN.dcm", frozenset({"CT"})),  # pydicom-data: 512x512 abdominal (pancreas) CT
    ),
    "MRI": (
        ("MR_small.dcm", frozenset({"MR"})),  # 64x64 MR
        ("examples_overlay.dcm", frozenset({"MR"})),  # abdominal MR (liver)
        ("MR2_UNCI.dcm", frozenset({"MR"})),  # pydicom-data: 1024x1024 shoulder MR
    ),
    "X-Ray": (
        ("RG1_UNCI.dcm", frozenset({"CR", "DX", "RG"})),  # pydicom-data: chest film, MONOCHROME1
        ("RG3_UNCI.dcm", frozenset({"CR", "DX", "RG"})),  # pydicom-data: tibia film, MONOCHROME1
    ),
    "Ultrasound": (
        ("examples_rgb_color.dcm", frozenset({"US"})),  # colour Doppler, RGB
        ("examples_palette.dcm", frozenset({"US"})),  # obstetric, PALETTE COLOR
        ("examples_jpeg2k.dcm", frozenset({"US"})),  # colour Doppler, JPEG 2000 (YBR_RCT)
        ("examples_ybr_color.dcm", frozenset({"US"})),  # echocardiogram cine, JPEG YBR_FULL_422
        ("gdcm-US-ALOKA-16.dcm", frozenset({"US"})),  # pydicom-data: 16-bit palette B-mode
        ("color-pl.dcm", frozenset({"US"})),  # pydicom-data: transesophageal echo, colour flow
    ),
}
SKIMAGE_SOURCES = {
    "Fundus Photography": ("retina", "microaneurysms"),
    "Microscopy": ("immunohistochemistry", "cell"),
}
# Number of procedural pictures for the modalities no package ships.
N_PROCEDURAL = 3
MIN_PER_MODALITY = 2

_ALIASES = {m.lower(): m for m in MODALITIES} | {raw.lower(): m for m, raw in RAW_MODALITY.items()}


def canonical_modality(name: str) -> str:
    """Canonical modality for a canonical or raw OmniMedVQA name (case-insensitive)."""
    try:
        return _ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown modality {name!r}; expected one of {', '.join(MODALITIES)}") from None


# --------------------------------------------------------------------------- real sources


def _dicom_samples(modality: str) -> list[Image.Image]:
    import pydicom
    from pydicom.data import get_testdata_file

    images = []
    for name, accepted in DICOM_SOURCES.get(modality, ()):
        # download=False: never touch the network; pydicom-data registers its files locally.
        path = get_testdata_file(name, download=False)
        if path is None:
            log.warning("sample %s not installed (needs pydicom / pydicom-data); skipped", name)
            continue
        try:
            tag = str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality", ""))
            if tag not in accepted:
                log.warning("sample %s has Modality %r, not %s; skipped", name, tag, modality)
                continue
            images.append(dicom_to_image(path))
        except ValueError as exc:
            # Typically a compressed transfer syntax with no codec installed.
            log.warning("sample %s does not decode offline; skipped: %s", name, exc)
    return images


def _fundus_tint(gray: np.ndarray) -> Image.Image:
    """Green-channel fundus crop shown in fundus colours (orange-red background, dark vessels)."""
    v = window_to_uint8(gray).astype(np.float32) / 255.0
    rgb = np.stack([0.35 + 0.6 * v, 0.08 + 0.45 * v, 0.02 + 0.2 * v], axis=-1)
    return Image.fromarray((rgb * 255.0 + 0.5).astype(np.uint8), "RGB")


def _skimage_samples(modality: str) -> list[Image.Image]:
    try:
        import skimage.data
    except ImportError as exc:
        log.warning("scikit-image missing, no %s samples: %s", modality, exc)
        return []
    images = []
    for name in SKIMAGE_SOURCES.get(modality, ()):
        try:
            arr = getattr(skimage.data, name)()
        except Exception as exc:  # noqa: BLE001 - e.g. a data file that needs a download offline
            log.warning("skimage.data.%s unavailable; skipped: %s", name, exc)
            continue
        if name == "microaneurysms":
            images.append(_fundus_tint(arr))
        else:
            images.append(Image.fromarray(arr).convert("RGB"))
        if name == "retina":
            # The mirror image is a plausible fellow (left) eye: optic disc on the other side.
            images.append(ImageOps.mirror(images[-1]))
    return images


# --------------------------------------------------------------------------- procedural sources


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: coarse uniform noise upsampled bicubically."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    field = Image.fromarray(coarse, "L").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(field, dtype=np.float32) / 255.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


# Retinal layers from the vitreous down: (thickness as a fraction of height, reflectivity,
# thins at the fovea). Bright: RNFL, plexiform layers, IS/OS, RPE; dark: nuclear layers.
_OCT_LAYERS = (
    (0.030, 0.75, True),  # nerve fibre layer
    (0.045, 0.45, True),  # ganglion cell / inner plexiform
    (0.025, 0.22, True),  # inner nuclear
    (0.020, 0.50, True),  # outer plexiform
    (0.060, 0.12, False),  # outer nuclear
    (0.012, 0.85, False),  # ellipsoid zone (IS/OS)
    (0.010, 0.30, False),  # interdigitation
    (0.022, 1.00, False),  # retinal pigment epithelium
    (0.120, 0.40, False),  # choroid
)


def synthetic_oct(seed: int, size: int = 512) -> Image.Image:
    """Grayscale OCT B-scan: layered retina with a foveal pit, speckle, dark vitreous."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.0, 1.0, size, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]
    fovea = rng.uniform(-0.25, 0.25)
    pit = np.exp(-(((x - fovea) / rng.uniform(0.12, 0.2)) ** 2))
    # Curved, slightly tilted retina; the pit is where inner layers thin out.
    boundary = 0.32 + rng.uniform(-0.04, 0.04) + rng.uniform(0.04, 0.1) * x**2 + rng.uniform(-0.04, 0.04) * x
    boundary = boundary + 0.05 * pit
    edge = 1.0 / size  # about one pixel of soft transition
    img = np.zeros((size, size), dtype=np.float32)
    for thickness, reflectivity, thins in _OCT_LAYERS:
        t = thickness * (1.0 - 0.85 * pit if thins else 1.0 + 0.15 * pit)
        lower = boundary + t
        band = _sigmoid((y - boundary) / edge) - _sigmoid((y - lower) / edge)
        img += reflectivity * rng.uniform(0.85, 1.1) * band
        boundary = lower
    img *= np.exp(-np.clip(y - boundary, 0.0, None) * 8.0)  # signal decays into the choroid/sclera
    speckle = rng.gamma(shape=2.0, scale=0.5, size=img.shape).astype(np.float32)
    img = img * speckle + 0.04 * rng.random(img.shape, dtype=np.float32)
    smoothed = Image.fromarray(window_to_uint8(img, (0.0, 1.2)), "L").filter(ImageFilter.GaussianBlur(0.7))
    return smoothed.convert("RGB")


def synthetic_dermoscopy(seed: int, size: int = 512) -> Image.Image:
    """Dermoscopy-like picture: irregular brown pigmented lesion on skin, dark circular vignette."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) * 2.0 - 1.0
    cx, cy = rng.uniform(-0.15, 0.15, size=2)
    r, theta = np.hypot(xx - cx, yy - cy), np.arctan2(yy - cy, xx - cx)
    # Irregular border: base radius modulated by random angular harmonics.
    radius = np.full_like(r, rng.uniform(0.3, 0.5))
    for k in range(2, 9):
        radius *= 1.0 + rng.uniform(0.03, 0.12) / k**0.5 * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    lesion = _sigmoid((radius - r) / rng.uniform(0.015, 0.04))
    core = np.clip(1.0 - r / radius, 0.0, 1.0)  # darker pigment towards the centre
    # Reticular pigment network: thin lines along the level set of a smooth random field.
    net = np.abs(_smooth_noise(rng, size, int(rng.integers(40, 70))) - 0.5)
    network = np.clip(1.0 - net / 0.12, 0.0, 1.0) ** 2
    blotches = _smooth_noise(rng, size, 6)
    tone = rng.uniform()  # between fair and light-tan skin
    skin = (np.array([232, 190, 165]) * (1 - tone) + np.array([205, 150, 115]) * tone).astype(np.float32)
    u = rng.uniform()  # tan to mid brown; channels move together so the hue stays brown
    light_brown = (np.array([170, 110, 72]) * (1 - u) + np.array([125, 75, 48]) * u).astype(np.float32)
    dark_brown = np.array([60, 35, 25], dtype=np.float32)
    shade = np.clip(0.55 * core + 0.6 * blotches - 0.15, 0.0, 1.0)
    pigment = light_brown + (dark_brown - light_brown) * shade[..., None]
    pigment *= (1.0 - 0.35 * network * np.clip(1.2 - core, 0.0, 1.0))[..., None]
    skin_tex = skin * (0.96 + 0.06 * _smooth_noise(rng, size, 12))[..., None]
    rgb = skin_tex * (1.0 - lesion[..., None]) + pigment * lesion[..., None]
    # Dermatoscope field of view: bright centre, dark rim, black corners.
    field = np.hypot(xx, yy)
    rgb *= (np.clip(1.0 - 0.35 * field**2, 0.0, 1.0) * _sigmoid((0.98 - field) / 0.02))[..., None]
    rgb += rng.normal(0.0, 3.0, size=rgb.shape).astype(np.float32)
    return Image.fromarray((np.clip(rgb, 0, 255) + 0.5).astype(np.uint8), "RGB")


_PROCEDURAL = {"OCT": synthetic_oct, "Dermoscopy": synthetic_dermoscopy}


# --------------------------------------------------------------------------- public API


@functools.cache
def _originals(modality: str) -> tuple[Image.Image, ...]:
    """Decoded full-resolution 8-bit RGB samples for one canonical modality (decoded once)."""
    if modality in _PROCEDURAL:
        images = [_PROCEDURAL[modality](seed) for seed in range(N_PROCEDURAL)]
    elif modality in SKIMAGE_SOURCES:
        images = _skimage_samples(modality)
    else:
        images = _dicom_samples(modality)
    if not images:
        raise RuntimeError(f"no sample image for {modality} could be loaded offline")
    if len(images) < MIN_PER_MODALITY:
        log.warning("only %d sample(s) for %s; adding mirrored copies", len(images), modality)
        images += [ImageOps.mirror(im) for im in images[: MIN_PER_MODALITY - len(images)]]
    return tuple(images)


@functools.lru_cache(maxsize=64)
def _resized(modality: str, size: int) -> tuple[Image.Image, ...]:
    # Letterbox onto black (the usual medical background) instead of squashing the aspect ratio.
    return tuple(
        ImageOps.pad(im, (size, size), method=Image.Resampling.BICUBIC, color=(0, 0, 0))
        for im in _originals(modality)
    )


def sample_images(modality: str, size: int = 256) -> list[Image.Image]:
    """A few real (or, for OCT/dermoscopy, procedural) 8-bit RGB pictures of `modality`.

    `modality` is a canonical OmniMedVQA name (or its raw spelling); every image is size x size.
    Results are cached in-process; the returned images are fresh copies, safe to modify.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return [im.copy() for im in _resized(canonical_modality(modality), int(size))]
