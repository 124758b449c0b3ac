"""Image validation and loading: dataset images (any PIL mode) and DICOM, to 8-bit RGB."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# Real radiographs are ~2000x2000; anything above 10k x 10k is treated as a decompression bomb.
MAX_IMAGE_PIXELS = 100_000_000

# Tail window for the truncation check; generous enough for trailing zero padding and metadata.
_TAIL_BYTES = 4096
_JPEG_FORMATS = {"JPEG", "MPO"}
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")

# Robust window for high-bit-depth data: ignore the extreme 0.5% tails (hot pixels, padding).
_LOW_PCT, _HIGH_PCT = 0.5, 99.5
# Percentiles are estimated on at most this many pixels (strided sample) to keep big films fast.
_PCT_SAMPLE = 1 << 18
_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;16S"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def _escapes_root(root: Path, rel_path: str) -> bool:
    """True for absolute paths, any `..` component, or a real path outside root's real path."""
    if not rel_path:
        return False
    # Both separators count: a "..\\" or "C:\\" path from a Windows-made JSON is just as unsafe.
    if rel_path.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(rel_path):
        return True
    if ".." in re.split(r"[\\/]", rel_path):
        return True
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, rel_path))
    return os.path.commonpath([real_root, real]) != real_root


def _tail_ok(path: Path, fmt: str | None, file_size: int) -> bool:
    """Cheap truncation check on the last bytes only; unknown formats pass."""
    if fmt not in _JPEG_FORMATS and fmt != "PNG":
        return True
    with open(path, "rb") as fh:
        fh.seek(max(0, file_size - _TAIL_BYTES))
        tail = fh.read()
    if fmt == "PNG":
        return b"IEND" in tail
    # Some writers pad JPEGs with zeros after the EOI marker.
    return tail.rstrip(b"\x00").endswith(b"\xff\xd9")


def _is_dicom(path: Path) -> bool:
    """DICOM Part 10 files carry 'DICM' after a 128-byte preamble."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _dicom_pixels(path: Path) -> int | None:
    """Rows*Columns from the DICOM header (no pixel data read), None if unreadable."""
    import pydicom  # lazy: only DICOM users pay for it

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.Rows) * int(ds.Columns)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not an image"
        log.debug("DICOM header unreadable %s: %s", path, exc)
        return None


def check_image(root: Path, rel_path: str, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Validate one dataset image cheaply (header + tail only, never decodes pixels).

    Returns None when fine, else a short reason starting with one of: "path escapes root",
    "image missing", "image empty", "not an image", "image truncated", "image too large".
    """
    root = Path(root)
    rel_path = str(rel_path)
    if _escapes_root(root, rel_path):
        return "path escapes root"
    path = root / rel_path
    try:
        st = path.stat()
    except OSError:
        return "image missing"
    if not path.is_file():
        return "image missing (not a regular file)"
    if st.st_size == 0:
        return "image empty"
    if _is_dicom(path):
        pixels = _dicom_pixels(path)
        if pixels is None:
            return "not an image (unreadable DICOM header)"
        return f"image too large ({pixels} pixels)" if pixels > max_pixels else None
    try:
        # PIL's own bomb check warns/raises on open; we apply our own limit instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                fmt = im.format
    except Image.DecompressionBombError:
        return "image too large (over PIL's limit)"
    except UnidentifiedImageError:
        return "not an image"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # A header PIL recognises but cannot parse: usually a cut-off or corrupt file.
        return f"not an image ({type(exc).__name__})"
    if width * height > max_pixels:
        return f"image too large ({width}x{height})"
    if not _tail_ok(path, fmt, st.st_size):
        return f"image truncated ({fmt} end marker missing)"
    return None


# EXIF orientations that `load_image`'s exif_transpose turns by 90 degrees (width and height swap).
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}


def image_dimensions(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the image `load_image(path, size=None)` returns, from the header alone (no pixel
    decoding): EXIF rotation applied, DICOM from Rows/Columns. ValueError names the path when unreadable."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".dcm" or _is_dicom(path):
            import pydicom  # lazy: only DICOM users pay for it

            ds = pydicom.dcmread(path, stop_before_pixels=True)
            return int(ds.Columns), int(ds.Rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                # ExifTags.Base.Orientation; a PNG's getexif decodes the file unless eXIf precedes the pixels.
                exif = im.getexif() if im.format != "PNG" or "exif" in im.info else {}
                orientation = exif.get(0x0112)
    except Exception as exc:  # noqa: BLE001 - PIL and pydicom raise many types for unreadable headers
        raise ValueError(f"cannot read the image header of {path}: {exc}") from exc
    return (height, width) if orientation in _TRANSPOSED_ORIENTATIONS else (width, height)


# --------------------------------------------------------------------------- 8-bit conversion


def _robust_window(arr: np.ndarray) -> tuple[float, float]:
    """(low, high) display window: 0.5/99.5 percentiles, or min/max when that range is tiny."""
    finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr.ravel()
    if finite.size == 0:
        return 0.0, 0.0
    step = max(1, finite.size // _PCT_SAMPLE)
    lo, hi = np.percentile(finite[::step], [_LOW_PCT, _HIGH_PCT])
    mn, mx = float(finite.min()), float(finite.max())
    # Percentiles that coincide (mostly-flat image with a small object) would erase the object.
    # Only a degenerate window falls back: any ratio rule would let one hot pixel flatten the rest.
    if hi - lo <= 1e-6 * max(1.0, abs(lo), abs(hi)):
        return mn, mx
    return float(lo), float(hi)


def window_to_uint8(arr: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Map any numeric array onto 0..255 through a linear window (robust window by default).

    Constant images come out black (value 0) or mid-gray (any other value), never NaN.
    """
    arr = np.asarray(arr)
    lo, hi = window if window is not None else _robust_window(arr)
    if not hi > lo:
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        level = 128 if finite.size and np.any(finite != 0) else 0
        return np.full(arr.shape, level, dtype=np.uint8)
    scaled = (arr.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    return (np.clip(scaled, 0.0, 255.0) + 0.5).astype(np.uint8)


def _gray_to_rgb(gray8: np.ndarray) -> Image.Image:
    return Image.fromarray(gray8, "L").convert("RGB")


def to_rgb8(im: Image.Image) -> Image.Image:
    """Convert a PIL image of any mode to 8-bit RGB, keeping its contrast."""
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode in _HIGH_DEPTH_MODES:
        # PIL's own convert("L") clips 16-bit data to 255 (near-white) or truncates it.
        return _gray_to_rgb(window_to_uint8(np.asarray(im)))
    if mode == "P" and "transparency" in im.info:
        mode, im = "RGBA", im.convert("RGBA")
    if mode in _ALPHA_MODES:
        # Transparent regions become black, the usual background of medical images.
        rgba = im.convert("RGBA")
        out = Image.new("RGB", rgba.size, (0, 0, 0))
        out.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return out
    # 1, L, P, CMYK, YCbCr, LAB, HSV: PIL's converters are exact enough at 8 bits.
    return im.convert("RGB")


def _resize(im: Image.Image, size: int | None) -> Image.Image:
    if size is None:
        return im
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if im.size == (size, size):
        return im
    return im.resize((size, size), Image.Resampling.BICUBIC)


def load_image(path: str | os.PathLike, size: int | None = 384) -> Image.Image:
    """Load an image file (any PIL mode, or DICOM) as 8-bit RGB, square-resized to `size`.

    EXIF orientation is applied; high-bit-depth data is windowed robustly to 8 bits; alpha is
    composited onto black. `size=None` keeps the original size. Raises ValueError naming the
    path when the file cannot be opened or decoded.
    """
    path = Path(path)
    if path.suffix.lower() == ".dcm" or _is_dicom(path):
        return _resize(dicom_to_image(path), size)
    try:
        with warnings.catch_warnings():
            # Over-large images are rejected by check_image; here PIL's hard limit still applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                rgb = to_rgb8(ImageOps.exif_transpose(im))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image {path}: {exc}") from exc
    return _resize(rgb, size)


# --------------------------------------------------------------------------- DICOM


def _scale_nominal(arr: np.ndarray, bits: int) -> np.ndarray:
    """Colour data: scale by the nominal bit depth (per-channel windowing would shift hues)."""
    if arr.dtype == np.uint8 or bits <= 8:
        return np.clip(arr, 0, 255).astype(np.uint8)
    return window_to_uint8(arr, (0.0, float(2**bits - 1)))


def _dicom_gray_to_uint8(arr: np.ndarray, ds) -> np.ndarray:
    """Modality LUT (rescale), then VOI LUT/window if present, then 8 bits; MONOCHROME1 inverted."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(arr, ds)
    window = None
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        try:
            values = apply_voi_lut(values.astype(np.float64), ds, index=0)
            # The VOI output already is the display range: map it whole, no further clipping.
            window = (float(np.min(values)), float(np.max(values)))
        except Exception as exc:  # noqa: BLE001 - a malformed VOI must not lose the image
            log.warning("ignoring unusable VOI LUT/window: %s", exc)
    gray8 = window_to_uint8(values, window)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        # MONOCHROME1 stores "high = dark" (e.g. computed radiography films).
        gray8 = 255 - gray8
    return gray8


def dicom_to_image(path: str | os.PathLike) -> Image.Image:
    """Decode a DICOM file to an 8-bit RGB image with its display contrast.

    Multi-frame files give their middle frame; PALETTE COLOR goes through its colour LUT; YBR
    data comes back as RGB (pydicom converts it); grayscale gets modality + VOI LUTs.
    Raises ValueError naming the path when pydicom cannot decode the pixel data.
    """
    try:
        import pydicom  # lazy: only DICOM users pay for the import
        from pydicom.pixels import apply_color_lut, pixel_array

        ds = pydicom.dcmread(path)
        frames = int(ds.get("NumberOfFrames") or 1)
        # Decode only the middle frame: cine loops can hold hundreds of frames.
        arr = pixel_array(ds, index=frames // 2 if frames > 1 else None)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        if photometric == "PALETTE COLOR":
            rgb = _scale_nominal(apply_color_lut(arr, ds), int(ds.RedPaletteColorLookupTableDescriptor[2]))
        elif arr.ndim == 3:
            # pixel_array returns RGB for YBR_* (as_rgb=True); J2K decoders undo RCT/ICT themselves.
            rgb = _scale_nominal(arr, int(ds.get("BitsStored") or 8))
        else:
            return _gray_to_rgb(_dicom_gray_to_uint8(arr, ds))
    except Exception as exc:  # pydicom raises many types for undecodable data
        raise ValueError(f"cannot decode DICOM {path}: {exc}") from exc
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")
