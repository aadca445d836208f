"""Image bytes -> upright RGB arrays -> JPEG, with NumPy, Pillow and OpenCV only (no TensorFlow).

Shared by the record builder (:mod:`fer_tf.build`), local-dataset importers and inference: every
route decodes the same way (PNG/GIF/WebP transparency composited on white, the first frame of an
animation, palette/greyscale/16-bit/32-bit images scaled to 8-bit RGB, CMYK/YCCK JPEG, the EXIF
orientation applied) and re-encodes with the same settings. The in-graph decoders live in
:mod:`fer_tf.preprocessing.image`; this module must stay importable without TensorFlow because it
runs in the builder's worker processes.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "decode_image",
    "exif_orientation",
    "resize_shorter",
    "encode_jpeg",
    "needs_change",
    "process_image",
]

#: JPEG quality of re-encoded images (the record builder's default too).
DEFAULT_JPEG_QUALITY = 95
_ORIENTATION_TAG = 0x0112


def exif_orientation(im: Any) -> int:
    """The EXIF orientation (1..8) of a PIL image; 1 when absent or unreadable.

    Args:
        im: an open ``PIL.Image.Image``.

    Returns:
        The orientation tag value (1: upright).
    """
    with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
        return int(im.getexif().get(_ORIENTATION_TAG, 1) or 1)
    return 1


def _to_rgb(im: Any) -> Any:
    """Any Pillow mode -> an RGB ``PIL.Image`` (high bit depths scaled, alpha on white)."""
    import numpy as np
    from PIL import Image

    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        scale = 257.0 if (mode.startswith("I;16") or arr.max(initial=0) > 255) else 1.0
        if mode == "I" and arr.max(initial=0) > 65535:
            scale = arr.max() / 255.0
        grey = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
        im = Image.fromarray(grey, "L")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        hi = arr.max(initial=0)
        arr = arr * 255.0 if hi <= 1.0 else arr
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def decode_image(data: bytes, info: dict[str, Any] | None = None) -> Any:
    """Decode image bytes to an upright uint8 RGB array.

    Handles PNG/GIF/WebP with transparency (composited on white), the first frame of animations,
    palette, greyscale, 16-bit and 32-bit integer images (scaled to 8 bits), CMYK/YCCK JPEG and the
    EXIF orientation tag.

    Args:
        data: the file bytes.
        info: if given, filled with the source ``format``, ``mode`` and EXIF ``orientation``.

    Returns:
        ``numpy.ndarray`` of shape ``(H, W, 3)``, dtype uint8.

    Raises:
        ValueError: the bytes are not a decodable image (message says why).
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        im.seek(0)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot decode the image: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"decompression bomb refused: {exc}") from None
    if info is not None:
        info["format"], info["mode"] = im.format, im.mode
        info["orientation"] = exif_orientation(im)
    with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
        im = ImageOps.exif_transpose(im) or im
    return np.asarray(_to_rgb(im), dtype=np.uint8)


def resize_shorter(image: Any, size: int) -> Any:
    """Downscale so the shorter side is ``size`` (aspect kept, Lanczos); smaller images are kept.

    Args:
        image: uint8 RGB array ``(H, W, 3)``.
        size: the largest shorter side wanted.

    Returns:
        The (possibly) resized uint8 RGB array.
    """
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    short = min(h, w)
    if short <= size:
        return image
    nh, nw = max(1, round(h * size / short)), max(1, round(w * size / short))
    out = Image.fromarray(image, "RGB").resize((nw, nh), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


def encode_jpeg(image: Any, quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """Encode a uint8 RGB array as a baseline JPEG (Pillow's encoder and default subsampling).

    Args:
        image: uint8 RGB array ``(H, W, 3)``.
        quality: JPEG quality 1..100.

    Returns:
        The JPEG bytes.
    """
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def needs_change(options: Mapping[str, Any], shape: tuple[int, ...] | None = None) -> bool:
    """Whether ``options`` change an image's pixels (crop, equalise, re-encode, or resize).

    Args:
        options: the :func:`process_image` options.
        shape: the decoded image's shape; without it the resize is not considered.

    Returns:
        True when the original bytes cannot be kept as they are.
    """
    size = options.get("image_size")
    return bool(
        options.get("face_crop", "none") != "none"
        or options.get("equalize")
        or (shape is not None and size and min(shape[:2]) > int(size))
        or options.get("reencode_jpeg")
    )


def process_image(data: bytes, options: Mapping[str, Any]) -> tuple[str, Any, str]:
    """Decode, optionally face-crop/equalise/resize, and (re-)encode one image as RGB JPEG.

    The image is always fully decoded (that is the validation). An original that is already an
    upright RGB JPEG and needs no change (no resize, crop or equalisation) is stored as it is, like
    TF-Slim's ``build_image_data`` does: no generation loss, less CPU. Everything else (PNG, GIF,
    WebP, BMP, CMYK or greyscale JPEG, EXIF-rotated JPEG) is re-encoded with ``jpeg_quality``;
    ``reencode_jpeg=True`` re-encodes every image.

    Args:
        data: original file bytes.
        options: ``image_size`` (int or None), ``jpeg_quality`` (int), ``face_crop``
            (``"none"``/``"haar"``), ``face_margin`` (float), ``face_fallback``
            (``"keep"``/``"drop"``), ``equalize`` (bool), ``reencode_jpeg`` (bool).

    Returns:
        ``("ok", jpeg_bytes, "")``, ``("fail", None, detail)`` for an undecodable image
        (``corrupt_image``) or ``("skip", None, detail)`` when no face was found and
        ``face_fallback="drop"`` (``no_face``).
    """
    src: dict[str, Any] = {}
    try:
        image = decode_image(data, src)
    except ValueError as exc:
        return "fail", None, str(exc)
    upright_rgb_jpeg = (
        src.get("format") == "JPEG" and src.get("mode") == "RGB" and src.get("orientation") == 1
    )
    if upright_rgb_jpeg and not needs_change(options, image.shape):
        return "ok", data, ""
    if options.get("face_crop", "none") == "haar":
        from fer_tf.preprocessing import faces

        # Missing keys take crop_face's own defaults (one home for them).
        kwargs: dict[str, Any] = {}
        if options.get("face_margin") is not None:
            kwargs["margin"] = float(options["face_margin"])
        if options.get("face_fallback") is not None:
            kwargs["fallback"] = str(options["face_fallback"])
        cropped, _ = faces.crop_face(image, **kwargs)
        if cropped is None:
            return "skip", None, "no face found (Viola-Jones) and face_fallback='drop'"
        image = cropped
    if options.get("equalize"):
        from fer_tf.preprocessing import faces

        image = faces.equalize(image)
    if options.get("image_size"):
        image = resize_shorter(image, int(options["image_size"]))
    return "ok", encode_jpeg(image, int(options.get("jpeg_quality", DEFAULT_JPEG_QUALITY))), ""
