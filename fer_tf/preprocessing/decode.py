"""Image bytes -> upright RGB arrays -> JPEG, with NumPy, Pillow and OpenCV only (no TensorFlow).

Shared by the record builder (:mod:`fer_tf.build`), local-dataset importers and inference: every
route decodes the same way (PNG/GIF/WebP transparency composited on white, the first frame of an
animation, palette/greyscale/16-bit/32-bit images scaled to 8-bit RGB, CMYK/YCCK JPEG, the EXIF
orientation applied) and re-encodes with the same settings. The in-graph decoders live in
:mod:`fer_tf.preprocessing.image`; this module must stay importable without TensorFlow because it
runs in the builder's worker processes.

The kernel (decode -> resize -> encode) is built for cost, with the same validation as a full
Pillow decode:

- Pillow parses the header only (format, mode, size, EXIF orientation, the decompression-bomb
  limit). RGB and greyscale JPEGs are then decoded by OpenCV (libjpeg-turbo, like Pillow: the same
  pixels, tested), everything else (PNG, GIF, WebP, BMP, TIFF, CMYK/YCCK JPEG) by Pillow.
- A JPEG that will be downscaled is decoded at the smallest DCT scale (1/2, 1/4 or 1/8) whose
  shorter side still reaches the target. DCT scaling entropy-decodes every coefficient, so corrupt
  data fails exactly as in a full decode; a JPEG without its end-of-image marker after the first
  scan (truncated) never reaches OpenCV (older releases only warn and fill the rest grey):
  Pillow decodes it and reports "image file is truncated". Any OpenCV failure falls back to Pillow,
  so the set of accepted images and the failure messages are Pillow's.
- The final resize maps the source rectangle exactly (the partial edge block of a DCT-scaled image
  is not stretched): bicubic when the remaining factor is below 1.5 (a mild shrink: sharp, close
  to Lanczos), OpenCV's area average (antialiased box, img2dataset's filter) otherwise.
- OpenCV encodes: baseline JPEG, 4:2:0, the IJG tables at the given quality; byte-identical to
  Pillow's encoder with its defaults.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "decode_image",
    "exif_orientation",
    "resize_shorter",
    "encode_jpeg",
    "needs_change",
    "process_image",
    "jpeg_segments",
    "open_error_detail",
    "validate_as_is",
]

#: JPEG quality of re-encoded images (the record builder's default too).
DEFAULT_JPEG_QUALITY = 95
_ORIENTATION_TAG = 0x0112
#: Below this remaining shrink factor bicubic is used, from it on the area average.
_CUBIC_BELOW = 1.5
#: Formats and modes OpenCV decodes to the same pixels as Pillow (the rest go through Pillow).
_CV_FORMATS = ("JPEG", "MPO")
_CV_MODES = ("RGB", "L")
_OPEN_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


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


def open_error_detail(exc: BaseException) -> str:
    """Pillow's reason for not opening an image, without the object it names.

    For bytes Pillow's message holds a ``BytesIO``'s memory address (for a file, its path), so the
    same input would get a different detail every run; failure reports are compared across
    rebuilds.

    Args:
        exc: what ``PIL.Image.open`` raised.

    Returns:
        The reason (``"cannot identify image file"`` for content Pillow does not recognise).
    """
    return "cannot identify image file" if "cannot identify" in str(exc) else str(exc)


def _open(data: bytes) -> Any:
    """Pillow's header parse (lazy: no pixels yet), with decode errors as ``ValueError``."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, *_OPEN_ERRORS) as exc:
        raise ValueError(f"cannot decode the image: {open_error_detail(exc)}") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"decompression bomb refused: {exc}") from None


def _pil_load(im: Any) -> None:
    """Pillow's decode of an opened image (first frame), errors as ``ValueError``."""
    from PIL import Image

    try:
        im.seek(0)
        im.load()
    except _OPEN_ERRORS as exc:
        raise ValueError(f"cannot decode the image: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"decompression bomb refused: {exc}") from None


def _pil_pixels(im: Any) -> tuple[Any, int]:
    """Pillow's full decode -> ``(upright uint8 RGB array, EXIF orientation)`` (``ValueError``).

    The pixels are loaded before the EXIF block is read: some formats (PNG) keep it after the
    image data, and a failed load must surface here, not be swallowed by the EXIF reader.
    """
    import numpy as np
    from PIL import Image

    _pil_load(im)
    orientation = exif_orientation(im)
    method = _PIL_TRANSPOSE.get(orientation)
    if method is not None:  # what ImageOps.exif_transpose does, without its copy when upright
        im = im.transpose(getattr(Image.Transpose, method))
    return np.asarray(_to_rgb(im), dtype=np.uint8), orientation


#: EXIF orientation -> the Pillow transposition that makes the image upright.
_PIL_TRANSPOSE = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def _orient(image: Any, orientation: int) -> Any:
    """Apply an EXIF orientation to an array (OpenCV; the same result as Pillow's transpose)."""
    import cv2

    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """The header segments of a JPEG, up to and including its first start-of-scan.

    A walk over the marker segments (microseconds, no decode): fill bytes and standalone markers
    are stepped over; it stops at the first start-of-scan (``0xDA``, yielded) or at bytes that are
    not a marker (a damaged or non-JPEG file: the walk just ends).

    Args:
        data: the file bytes.

    Yields:
        ``(marker, position of its FF byte, segment length)`` per segment.
    """
    n, pos = len(data), 2
    if data[:2] != b"\xff\xd8":
        return
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # standalone markers
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield marker, pos, length
        if marker == 0xDA:
            return
        pos += 2 + length


def _jpeg_complete(data: bytes) -> bool:
    """Whether an end-of-image marker follows the first scan (a truncated JPEG has none).

    The header segments are walked to the first start-of-scan (an EXIF thumbnail's own markers
    live inside the APP1 segment and are skipped with it); entropy-coded data cannot hold
    ``FF D9`` (an ``FF`` byte there is stuffed or a restart marker), so any later one is the end.
    """
    for marker, pos, _ in jpeg_segments(data):
        if marker == 0xDA:
            return data.rfind(b"\xff\xd9", pos + 2) > pos
    return False


def _cv_decode(data: bytes, scale: int = 1, grey: bool = False) -> Any:
    """OpenCV's decode of a complete JPEG at ``1/scale`` (BGR or grey array), or None.

    None for a JPEG without its end marker or one OpenCV cannot decode: the caller then decodes
    with Pillow, which accepts or rejects it (with Pillow's message) as before.
    """
    import cv2
    import numpy as np

    if not _jpeg_complete(data):
        return None
    prefix = "IMREAD_REDUCED_GRAYSCALE_" if grey else "IMREAD_REDUCED_COLOR_"
    flag = getattr(cv2, f"{prefix}{scale}") if scale > 1 else int(not grey)
    with contextlib.suppress(cv2.error):
        return cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    return None


def _dct_scale(width: int, height: int, size: int | None) -> int:
    """The largest JPEG DCT reduction (1, 2, 4, 8) whose shorter side is still >= ``size``."""
    shorter = min(width, height)
    if not size:
        return 1
    for scale in (8, 4, 2):
        if shorter / scale >= size:
            return scale
    return 1


def _target(width: int, height: int, size: int) -> tuple[int, int]:
    """The ``(width, height)`` whose shorter side is ``size``, aspect kept (rounded)."""
    short = min(width, height)
    return max(1, round(width * size / short)), max(1, round(height * size / short))


def _resample(image: Any, src_w: float, src_h: float, width: int, height: int) -> Any:
    """Resize the ``src_w x src_h`` content of ``image`` to ``width x height`` (OpenCV).

    ``src_w``/``src_h`` may be fractional and smaller than the array (a DCT-scaled JPEG's last
    column and row stand for a partial block): the scale factors are passed to OpenCV, which then
    maps output pixel ``x`` to source ``x * src_w / width`` exactly, and the surplus is cut off.
    Bicubic below a remaining factor of 1.5, area average (antialiased) from it on.
    """
    import cv2

    factor = min(src_w / width, src_h / height)
    interp = cv2.INTER_CUBIC if factor < _CUBIC_BELOW else cv2.INTER_AREA
    out = cv2.resize(image, None, fx=width / src_w, fy=height / src_h, interpolation=interp)
    if out.shape[0] < height or out.shape[1] < width:  # pragma: no cover - OpenCV rounds up here
        out = cv2.resize(image, (width, height), interpolation=interp)
    return out[:height, :width]


def decode_image(data: bytes, info: dict[str, Any] | None = None) -> Any:
    """Decode image bytes to an upright uint8 RGB array.

    Handles PNG/GIF/WebP with transparency (composited on white), the first frame of animations,
    palette, greyscale, 16-bit and 32-bit integer images (scaled to 8 bits), CMYK/YCCK JPEG and the
    EXIF orientation tag. RGB and greyscale JPEGs are decoded by OpenCV (the same pixels as
    Pillow's decoder), the rest by Pillow; a truncated or corrupt image fails either way.

    Args:
        data: the file bytes.
        info: if given, filled with the source ``format``, ``mode`` and EXIF ``orientation``.

    Returns:
        ``numpy.ndarray`` of shape ``(H, W, 3)``, dtype uint8.

    Raises:
        ValueError: the bytes are not a decodable image (message says why).
    """
    image, bgr = _decode(data, None, info)
    if bgr:
        import cv2

        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def _decode(
    data: bytes, size: int | None, info: dict[str, Any] | None = None, im: Any = None
) -> tuple[Any, bool]:
    """Decode upright, downscaled so the shorter side is at most ``size`` (None: full size).

    ``im`` is the image :func:`_open` already made of ``data``, if any (not yet loaded).

    Returns:
        ``(array, bgr)``: uint8 ``(H, W, 3)``, in BGR order when ``bgr`` (OpenCV decoded it).

    Raises:
        ValueError: the bytes are not a decodable image.
    """
    im = _open(data) if im is None else im
    width, height = im.size
    shrink = bool(size) and min(width, height) > int(size or 0)
    image = None
    if im.format in _CV_FORMATS and im.mode in _CV_MODES:
        orientation = exif_orientation(im)  # a JPEG's EXIF is in its header: no decode here
        scale = _dct_scale(width, height, size)
        image = _cv_decode(data, scale)
    if image is not None:
        if shrink:
            image = _resample(image, width / scale, height / scale, *_target(width, height, size))
        image, bgr = _orient(image, orientation), True
    else:
        image, orientation = _pil_pixels(im)
        image, bgr = (resize_shorter(image, int(size)) if shrink else image), False
    if info is not None:
        info["format"], info["mode"], info["orientation"] = im.format, im.mode, orientation
    return image, bgr


def resize_shorter(image: Any, size: int) -> Any:
    """Downscale so the shorter side is ``size`` (aspect kept); smaller images are kept.

    Bicubic when the shrink factor is below 1.5, OpenCV's area average (antialiased) otherwise.

    Args:
        image: uint8 RGB array ``(H, W, 3)``.
        size: the largest shorter side wanted.

    Returns:
        The (possibly) resized uint8 RGB array.
    """
    h, w = image.shape[:2]
    if min(h, w) <= size:
        return image
    return _resample(image, w, h, *_target(w, h, size))


def _encode(image: Any, quality: int, bgr: bool) -> bytes:
    """OpenCV's JPEG encoder: baseline, 4:2:0, IJG tables at ``quality`` (as Pillow's)."""
    import cv2

    if not bgr:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        int(quality),
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    ]
    ok, buf = cv2.imencode(".jpg", image, params)
    if not ok:  # pragma: no cover - a uint8 3-channel array always encodes
        raise ValueError("OpenCV could not encode the image as JPEG")
    return buf.tobytes()


def encode_jpeg(image: Any, quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """Encode a uint8 RGB array as a baseline JPEG (4:2:0 chroma, the IJG quality tables).

    The bytes equal Pillow's ``save(..., "JPEG", quality=quality)``; OpenCV's encoder is used
    because it is cheaper per call.

    Args:
        image: uint8 RGB array ``(H, W, 3)``.
        quality: JPEG quality 1..100.

    Returns:
        The JPEG bytes.
    """
    import numpy as np

    return _encode(np.ascontiguousarray(image), int(quality), bgr=False)


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


def _kept_as_is(im: Any, options: Mapping[str, Any]) -> bool:
    """Whether :func:`process_image` stores the opened original unchanged (an upright RGB JPEG
    that no option changes)."""
    width, height = im.size
    return (
        im.format == "JPEG"
        and im.mode == "RGB"
        and exif_orientation(im) == 1
        and not needs_change(options, (height, width))
    )


def validate_as_is(data: bytes, options: Mapping[str, Any]) -> tuple[int, int] | None:
    """Validate an original that :func:`process_image` would store unchanged, cheaply.

    Its header is parsed and, if it is kept as it is, its entropy-coded data decoded at 1/8
    scale, greyscale (libjpeg's DCT scaling still reads every coefficient, so a truncated or
    corrupt JPEG fails exactly as in :func:`process_image`, which validates it the same way).

    Args:
        data: the original's bytes.
        options: the :func:`process_image` options.

    Returns:
        ``(width, height)`` when it is kept as it is (and valid); None when it must be processed
        (bytes whose header Pillow cannot parse included: :func:`process_image` reports those).

    Raises:
        ValueError: a JPEG kept as it is whose data is not decodable (message says why).
    """
    try:
        im = _open(data)
    except ValueError:
        return None
    if not _kept_as_is(im, options):
        return None
    _validate(data, im)
    return im.size


def _validate(data: bytes, im: Any) -> None:
    """Entropy-decode a JPEG at 1/8 scale, greyscale, only to validate it (``ValueError``)."""
    if _cv_decode(data, 8, grey=True) is not None:
        return
    width, height = im.size
    im.draft("L", (max(1, width // 8), max(1, height // 8)))
    _pil_load(im)  # Pillow accepts it or says why not


def process_image(data: bytes, options: Mapping[str, Any]) -> tuple[str, Any, str]:
    """Decode, optionally face-crop/equalise/resize, and (re-)encode one image as RGB JPEG.

    The image is always fully decoded or validated (every entropy-coded coefficient read). An
    original that is already an upright RGB JPEG and needs no change (no resize, crop or
    equalisation) is stored as it is, like TF-Slim's ``build_image_data`` does: no generation
    loss, less CPU; it is validated by a 1/8-scale greyscale decode. Everything else (PNG, GIF,
    WebP, BMP, CMYK or greyscale JPEG, EXIF-rotated JPEG) is re-encoded with ``jpeg_quality``;
    ``reencode_jpeg=True`` re-encodes every image. Without a face crop or equalisation, a JPEG
    to be downscaled is decoded at a reduced DCT scale first (see the module docstring).

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
    quality = int(options.get("jpeg_quality", DEFAULT_JPEG_QUALITY))
    size = int(options["image_size"]) if options.get("image_size") else None
    if options.get("face_crop", "none") != "none" or options.get("equalize"):
        return _process_full(data, options, size, quality)
    try:
        im = _open(data)
        if _kept_as_is(im, options):
            _validate(data, im)
            return "ok", data, ""
        image, bgr = _decode(data, size, im=im)
    except ValueError as exc:
        return "fail", None, str(exc)
    return "ok", _encode(image, quality, bgr), ""


def _process_full(
    data: bytes, options: Mapping[str, Any], size: int | None, quality: int
) -> tuple[str, Any, str]:
    """:func:`process_image` with a face crop or equalisation: full-size RGB pixels first."""
    try:
        image = decode_image(data)
    except ValueError as exc:
        return "fail", None, str(exc)
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
    if size:
        image = resize_shorter(image, size)
    return "ok", encode_jpeg(image, quality), ""
