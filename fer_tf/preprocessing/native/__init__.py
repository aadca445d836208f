"""fer_tf's native TensorFlow kernels, compiled on first use against the installed TensorFlow.

Three kernels (``image_ops.cc``), all CPU, all on the training input pipeline's per-example path
(:meth:`fer_tf.preprocessing.augment.AugmentPolicy.augment_example`):

- ``FerImageWarp``: the projective/affine warp of ``tf.raw_ops.ImageProjectiveTransformV3``
  (same coordinate formula, fill modes, bilinear/nearest arithmetic: the same output, tested bit
  for bit against the stock op), computed per output pixel for all channels at once (SSE2, four
  pixels at a time) instead of per output value; reads ``uint8`` directly, writes ``float32``.
  Used by :func:`fer_tf.preprocessing.augment.warp_to_size`.
- ``FerColourClip``: ``clip(x M + o)`` per pixel (one ``[C, C]`` matrix and ``[C]`` offset per
  image): the policy's contrast, gain, saturation and brightness, composed into one matrix, and
  the final clip in one pass (instead of a 1x1 convolution, an add and a clip).
- ``FerGaussianBlur``: the separable, reflect-padded Gaussian blur of
  :func:`fer_tf.preprocessing.augment.gaussian_blur` with per-image taps, one output row at a time
  (instead of a pad, two transposes and two depthwise convolutions).

TensorFlow's pip wheel ships the headers and the framework library custom ops link against
(``tf.sysconfig``), so the kernel is built from source by the system C++ compiler the first time
it is needed (about 6 s), into ``$FER_TF_HOME/ops`` (else ``~/.cache/fer_tf/ops``), under a name
that hashes the source, the TensorFlow version and the compile flags: a TensorFlow upgrade builds a
new one, every later process loads the cached library. Concurrent first uses are serialised by a
lock file; the library is written under a temporary name and renamed, so a killed build leaves
nothing half-written.

Where no compiler is found, the build fails or the library does not load, the stock kernels are
used instead (same images; only slower) and the reason is logged once (logger ``fer_tf``) and
kept in :func:`status`. ``FER_TF_NATIVE_OPS=0`` turns the native kernels off; ``CXX`` picks the
compiler.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["DISABLE_ENV", "image_ops", "library_dir", "status"]

DISABLE_ENV = "FER_TF_NATIVE_OPS"
_SOURCE = Path(__file__).with_name("image_ops.cc")
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}
log = logging.getLogger("fer_tf")


def library_dir() -> Path:
    """Where compiled kernels are kept: ``$FER_TF_HOME/ops``, else ``~/.cache/fer_tf/ops``.

    Returns:
        The directory (not created here).
    """
    home = os.environ.get("FER_TF_HOME")
    if home:
        return Path(home).expanduser() / "ops"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "fer_tf" / "ops"


def status() -> str:
    """How the native kernels stand in this process, in words.

    Returns:
        ``"not loaded yet"``, ``"loaded from <path>"``, or why the stock kernels are used.
    """
    return _STATE.get("status", "not loaded yet")


def image_ops() -> Any | None:
    """The loaded native op module, building it first if needed; ``None`` if unavailable.

    Tried once per process; the outcome (module or reason) is kept.

    Returns:
        The module from ``tf.load_op_library`` (``module.fer_image_warp(...)``, ``module.fer_colour_clip(...)``, ``module.fer_gaussian_blur(...)``), or ``None`` when
        the kernels are disabled (``FER_TF_NATIVE_OPS=0``) or cannot be built or loaded (the
        reason is logged once and returned by :func:`status`).
    """
    with _LOCK:
        if "module" not in _STATE:
            _STATE["module"], _STATE["status"] = _load()
            if _STATE["module"] is None and not _STATE["status"].startswith("disabled"):
                log.warning(
                    "fer_tf: native image kernels unavailable (%s); using TensorFlow's "
                    "stock kernel (same images, slower)",
                    _STATE["status"],
                )
        return _STATE["module"]


def _load() -> tuple[Any | None, str]:
    if os.environ.get(DISABLE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None, f"disabled by {DISABLE_ENV}={os.environ[DISABLE_ENV]}"
    import tensorflow as tf

    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        return None, "no C++ compiler found (set CXX, or install g++)"
    flags = [*tf.sysconfig.get_compile_flags(), "-O2", "-fPIC", "-shared", "-w"]
    link = tf.sysconfig.get_link_flags()
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [
                source,
                tf.__version__.encode(),
                " ".join(flags + link).encode(),
                sys.platform.encode(),
            ]
        )
    ).hexdigest()[:16]
    target = library_dir() / f"fer_image_ops-{key}.so"
    try:
        if not target.exists():
            error = _build(cxx, flags, link, target)
            if error:
                return None, error
        return tf.load_op_library(str(target)), f"loaded from {target}"
    except (OSError, tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
        return None, f"could not load {target}: {e}"


def _build(cxx: str, flags: list[str], link: list[str], target: Path) -> str | None:
    """Compile the kernel into ``target`` (atomically, one process at a time); the error or None."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.with_suffix(".lock")):
        if target.exists():  # another process built it while we waited
            return None
        fd, tmp = tempfile.mkstemp(suffix=".so.tmp", dir=target.parent)
        os.close(fd)
        cmd = [cxx, *flags, str(_SOURCE), "-o", tmp, *link]
        log.info(
            "fer_tf: compiling the native image kernels (once, a few seconds): %s", " ".join(cmd)
        )
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            Path(tmp).unlink(missing_ok=True)
            return f"{cxx} could not run: {e}"
        if done.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return f"{cxx} failed (exit {done.returncode}): {' | '.join(tail)}"
        os.replace(tmp, target)
    return None


@contextlib.contextmanager
def _file_lock(path: Path):
    import fcntl

    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
