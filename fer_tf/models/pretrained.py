"""Pretrained weights by name: ``weights="imagenet"`` downloads, verifies and caches a published file.

The registry (:data:`PRETRAINED`, :func:`list_pretrained`) holds, for each named weight of each
architecture, where it is published, what the file is, how it is checked and under which licence
it comes. :func:`fetch_pretrained` downloads on request (never at import) into a cache:

- the cache is ``$FER_TF_HOME/models`` when ``FER_TF_HOME`` is set, else ``~/.keras/models``
  (Keras's own cache, so a VGG16 file that ``keras.applications`` already fetched is reused);
- the download goes to ``<file>.part`` and resumes with an HTTP ``Range`` request after an
  interruption; a progress bar (tqdm) is shown only on a terminal;
- the file is verified against the hash its publisher records (Keras's MD5 for its VGG16 files);
  TF-Slim publishes no hash, so its archives are checked by reading the whole tar (gzip CRC) and
  then by the loader's one-to-one variable mapping (every model variable found, nothing left over);
  a file that fails its hash is deleted;
- when the network is unavailable the error names the URL and the manual alternative (download
  the file yourself and pass its path as ``weights=``).

``FER_TF_WEIGHTS_URL`` replaces the directory of every URL (a mirror, or a local server in
tests): ``$FER_TF_WEIGHTS_URL/<file name>``. FaceNet's checkpoints are distributed through links
that change (Google Drive); their entries have no URL and say where to get the files.

No TensorFlow is imported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_tf.checks import did_you_mean

__all__ = [
    "PretrainedWeights",
    "WeightsDownloadError",
    "PRETRAINED",
    "cache_dir",
    "fetch_pretrained",
    "find_pretrained",
    "is_pretrained_name",
    "list_pretrained",
    "pretrained_names",
    "register_pretrained",
]

#: Environment variable naming the cache root (``$FER_TF_HOME/models``).
HOME_ENV = "FER_TF_HOME"
#: Environment variable replacing the directory part of every URL (mirrors, tests).
URL_ENV = "FER_TF_WEIGHTS_URL"

_KINDS = ("slim", "keras_vgg16", "keras")
_CHUNK = 1 << 20
_ATTEMPTS = 3
#: Seconds before the first retry of a failed download (doubled for each further one).
RETRY_DELAY = 0.5
_SLIM = "https://github.com/tensorflow/models/tree/master/research/slim#pre-trained-models"
_KERAS = "keras/src/applications/vgg16.py (keras-team/keras)"
_FACENET = "https://github.com/davidsandberg/facenet#pre-trained-models"


class WeightsDownloadError(OSError):
    """A named weight could not be downloaded (the message names the URL and what to do)."""


@dataclass(frozen=True)
class PretrainedWeights:
    """One named weight of one architecture.

    Attributes:
        name: what ``weights=`` takes (``"imagenet"``).
        scope: the top slim scope of the models it fits (``"InceptionV4"``, ``"vgg_16"``).
        models: registered models built on that scope (for documentation and messages).
        url: where it is published; None when there is no stable link (FaceNet).
        filename: the file's name in the cache.
        kind: ``"slim"`` (a tar.gz holding a TF-Slim checkpoint), ``"keras_vgg16"`` (a
            Keras-applications VGG16 ``.h5``) or ``"keras"`` (a file ``model.load_weights`` reads).
        member: for archives, the checkpoint inside (its prefix, e.g. ``"inception_v4.ckpt"``).
        classes: outputs of its class layer (1001 with slim's background class, 1000 without).
        file_hash: the published hash (hex), or None when none is published.
        hash_algorithm: ``"md5"`` or ``"sha256"``.
        size: approximate download size, for people (``"553 MB"``).
        licence: the licence of the weights.
        source: where these facts were read.
        top: for files that exist with and without the classifier layers: True for the file with
            them, False for the one without, None when there is one file.
        extra_variables: checkpoint entries that are not model variables (skipped).
        optional_scopes: scopes restored only where the model's shapes match the file's (layers
            that variants of the architecture resize, such as VGG16's fc6/fc7); elsewhere left
            to train, like the class layers.
        note: what to do when there is no URL.
    """

    name: str
    scope: str
    models: tuple[str, ...]
    url: str | None
    filename: str
    kind: str
    member: str | None = None
    classes: int | None = None
    file_hash: str | None = None
    hash_algorithm: str = "sha256"
    size: str = ""
    licence: str = ""
    source: str = ""
    top: bool | None = None
    extra_variables: tuple[str, ...] = ()
    optional_scopes: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(
                f"The 'kind' parameter must be one of {list(_KINDS)}. Got {self.kind!r} instead."
            )
        if self.hash_algorithm not in ("md5", "sha256"):
            raise ValueError(
                "The 'hash_algorithm' parameter must be 'md5' or 'sha256'. "
                f"Got {self.hash_algorithm!r} instead."
            )

    @property
    def resolved_url(self) -> str | None:
        """The URL to fetch: :attr:`url`, or ``$FER_TF_WEIGHTS_URL/<file name>`` when set."""
        if self.url is None:
            return None
        base = os.environ.get(URL_ENV, "").strip()
        if base:
            return f"{base.rstrip('/')}/{self.url.rsplit('/', 1)[-1]}"
        return self.url


_SLIM_LICENCE = "Apache 2.0 (TF-Slim)"
_VGG_LICENCE = "CC BY 4.0 (Oxford VGG release; Keras: 'Creative Commons Attribution License')"
_VGG_MODELS = ("vgg16", "vgg16_reduced_fc")
_VGG_FC = ("vgg_16/fc6", "vgg_16/fc7")

#: Every named weight fer_tf knows (more can be added with :func:`register_pretrained`).
PRETRAINED: list[PretrainedWeights] = [
    PretrainedWeights(
        "imagenet",
        "InceptionV4",
        ("inception_v4",),
        "http://download.tensorflow.org/models/inception_v4_2016_09_09.tar.gz",
        "inception_v4_2016_09_09.tar.gz",
        "slim",
        member="inception_v4.ckpt",
        classes=1001,
        size="about 170 MB (estimated from 42.7 M float32 parameters)",
        licence=_SLIM_LICENCE,
        source=_SLIM,
    ),
    PretrainedWeights(
        "imagenet",
        "InceptionV2",
        ("inception_v2",),
        "http://download.tensorflow.org/models/inception_v2_2016_08_28.tar.gz",
        "inception_v2_2016_08_28.tar.gz",
        "slim",
        member="inception_v2.ckpt",
        classes=1001,
        size="about 45 MB (estimated from 11.2 M float32 parameters)",
        licence=_SLIM_LICENCE,
        source=_SLIM,
    ),
    PretrainedWeights(
        "imagenet",
        "vgg_16",
        _VGG_MODELS,
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "keras_vgg16",
        classes=1000,
        file_hash="64373286793e3c8b2b4e3219cbf3544b",
        hash_algorithm="md5",
        size="553 MB",
        licence=_VGG_LICENCE,
        source=_KERAS,
        top=True,
        optional_scopes=_VGG_FC,
    ),
    PretrainedWeights(
        "imagenet",
        "vgg_16",
        _VGG_MODELS,
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "keras_vgg16",
        classes=None,
        file_hash="6d6bbae143d832006294945121d1f1fc",
        hash_algorithm="md5",
        size="58.9 MB",
        licence=_VGG_LICENCE,
        source=_KERAS,
        top=False,
    ),
    PretrainedWeights(
        "imagenet-slim",
        "vgg_16",
        _VGG_MODELS,
        "http://download.tensorflow.org/models/vgg_16_2016_08_28.tar.gz",
        "vgg_16_2016_08_28.tar.gz",
        "slim",
        member="vgg_16.ckpt",
        classes=1000,
        size="about 515 MB (estimated from 138 M float32 parameters)",
        licence=f"{_SLIM_LICENCE}; the VGG weights are Oxford's CC BY 4.0 release",
        source=_SLIM,
        extra_variables=("vgg_16/mean_rgb",),
        optional_scopes=_VGG_FC,
    ),
    *(
        PretrainedWeights(
            name,
            "InceptionResnetV1",
            ("inception_resnet_v1",),
            None,
            run,
            "slim",
            size="about 110 MB (zip from Google Drive)",
            licence="MIT (davidsandberg/facenet)",
            source=_FACENET,
            note=(
                f"FaceNet's {run} checkpoint ({data}, Inception-ResNet-V1, 512-d embeddings: "
                f"bottleneck_size=512) is distributed through a Google Drive link that changes; "
                f"get it from {_FACENET}, unzip it and pass the checkpoint prefix as weights= "
                f"(e.g. weights='{run}/model-{run}.ckpt-<step>')"
            ),
        )
        for name, run, data in (
            ("vggface2", "20180402-114759", "VGGFace2, LFW 0.9965"),
            ("casia-webface", "20180408-102900", "CASIA-WebFace, LFW 0.9905"),
        )
    ),
]


def register_pretrained(spec: PretrainedWeights) -> PretrainedWeights:
    """Add a named weight (your own mirror or model); it is then accepted by ``weights=``.

    Args:
        spec: the entry.

    Returns:
        ``spec``.

    Raises:
        ValueError: an entry with the same name, scope and ``top`` exists.
    """
    for old in PRETRAINED:
        if (old.name, old.scope, old.top) == (spec.name, spec.scope, spec.top):
            raise ValueError(
                f"Named weights {spec.name!r} for scope {spec.scope!r} are already registered."
            )
    PRETRAINED.append(spec)
    return spec


def list_pretrained(model: str | None = None) -> list[PretrainedWeights]:
    """The registered named weights, optionally only those of one model.

    Args:
        model: a registered model name, or None for all.

    Returns:
        The entries.
    """
    if model is None:
        return list(PRETRAINED)
    return [p for p in PRETRAINED if model in p.models]


def pretrained_names(model: str | None = None) -> list[str]:
    """The names ``weights=`` accepts (for ``model``, or for any model).

    Args:
        model: a registered model name, or None.

    Returns:
        Sorted unique names.
    """
    return sorted({p.name for p in list_pretrained(model)})


def is_pretrained_name(value: Any) -> bool:
    """Whether ``value`` is read as a weight name rather than a path.

    A string is a name when no file or directory of that name exists and it has neither a path
    separator nor a file suffix (``"imagenet"``, ``"imagnet"``); such strings are checked against
    the registry (:func:`find_pretrained`) and never reported as missing files.

    Args:
        value: the ``weights`` argument.

    Returns:
        True for a name.
    """
    if not isinstance(value, str) or not value or Path(value).exists():
        return False
    if Path(f"{value}.index").exists():  # a slim checkpoint prefix in the working directory
        return False
    if value in pretrained_names():
        return True
    return "/" not in value and os.sep not in value and "." not in value


def _scopes_of(model: str) -> set[str]:
    from fer_tf.models import catalog

    return {catalog.get_spec(model).slim_scope}


def find_pretrained(
    name: str, *, model: str | None = None, scopes: set[str] | None = None, top: bool | None = None
) -> PretrainedWeights:
    """The registry entry for ``name`` and a model (by registry name or by its slim scopes).

    Args:
        name: the weight name (``"imagenet"``).
        model: the registry name of the model.
        scopes: the top slim scopes of a built model (used when ``model`` is None).
        top: whether the model has its classifier layers (picks the Keras VGG16 file).

    Returns:
        The entry.

    Raises:
        ValueError: the name is unknown, or not available for that model (the message lists
            the names that are, with a did-you-mean).
    """
    if model is not None:
        scopes = _scopes_of(model)
    found = [p for p in PRETRAINED if p.name == name and (scopes is None or p.scope in scopes)]
    if found:
        exact = [p for p in found if p.top is None or top is None or p.top == top]
        return (exact or found)[0]
    what = f"for {model}" if model else f"for a model with slim scope {sorted(scopes or [])}"
    names = sorted({p.name for p in PRETRAINED if scopes is None or p.scope in scopes})
    if not names:
        raise ValueError(
            f"The 'weights' parameter must be None or a checkpoint path {what}: no named "
            f"weights are published for it. Got {name!r} instead."
        )
    raise ValueError(
        f"The 'weights' parameter must be None, a checkpoint path or one of the named weights "
        f"{what}: {names}. Got {name!r} instead.{did_you_mean(name, names)}"
    )


def cache_dir() -> Path:
    """Where named weights are kept: ``$FER_TF_HOME/models``, else ``~/.keras/models``.

    Returns:
        The directory (not created here).
    """
    home = os.environ.get(HOME_ENV, "").strip()
    root = Path(home).expanduser() if home else Path("~/.keras").expanduser()
    return root / "models"


def _manual(spec: PretrainedWeights, target: Path, url: str) -> str:
    """The manual alternative, for error messages."""
    if spec.kind == "slim":
        how = (
            f"download {url} yourself, extract it (tar -xzf {spec.filename}) and pass the "
            f"checkpoint's path as weights= (weights='.../{spec.member}')"
        )
    else:
        how = (
            f"download {url} yourself and pass its path as weights= (weights='.../{spec.filename}')"
        )
    return f"{how}, or put the file at {target} and retry."


def _hash(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _progress(total: int | None, start: int, label: str, show: bool | None) -> Iterator[Any]:
    """A tqdm bar on a terminal (``show=None``), else a no-op ``update``."""
    if show is None:
        show = sys.stderr.isatty()
    bar = None
    if show:
        with contextlib.suppress(ImportError):
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=label)
    try:
        yield (bar.update if bar is not None else (lambda n: None))
    finally:
        if bar is not None:
            bar.close()


def _stream(url: str, part: Path, *, timeout: float, progress: bool | None, label: str) -> None:
    """GET ``url`` into ``part``, resuming from its size with a ``Range`` request."""
    import urllib3

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "fer_tf-weights/0.1", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    # Redirects followed here; failures are retried (resuming) by the caller.
    http = urllib3.PoolManager(
        retries=urllib3.Retry(connect=0, read=0, status=0, other=0, redirect=5)
    )
    resp = http.request(
        "GET",
        url,
        headers=headers,
        preload_content=False,
        timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
    )
    try:
        if resp.status == 416 and have:  # nothing left to send: the .part may be whole
            return
        if resp.status not in (200, 206):
            raise WeightsDownloadError(f"HTTP {resp.status} {resp.reason or ''}".strip())
        mode = "ab" if resp.status == 206 and have else "wb"
        start = have if mode == "ab" else 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        with part.open(mode) as fh, _progress(total, start, label, progress) as update:
            for chunk in resp.stream(_CHUNK):
                fh.write(chunk)
                update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise WeightsDownloadError(
                f"the connection closed after {part.stat().st_size} of {total} bytes"
            )
    finally:
        resp.release_conn()


def _describe(exc: BaseException) -> str:
    """``"<category>: <detail>"`` for a network exception (dns, timeout, tls or connection)."""
    chain, e = [], exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = " ".join(type(x).__name__ for x in chain)
    text = f"{type(exc).__name__}: {exc}"
    if "NameResolution" in names or "gaierror" in names:
        return f"dns: {text}"
    if "SSL" in names or "Certificate" in names:
        return f"tls: {text}"
    if "Timeout" in names or "timed out" in text.lower():
        return f"timeout: {text}"
    return f"connection: {text}"


def _download(spec: PretrainedWeights, target: Path, *, progress: bool | None) -> None:
    """Download (resuming) into ``target`` and verify its hash; raise the clear error."""
    url = spec.resolved_url
    assert url is not None  # checked by the caller
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    error = ""
    for attempt in range(_ATTEMPTS):  # each retry resumes from what the .part already holds
        try:
            _stream(url, part, timeout=60.0, progress=progress, label=spec.filename)
            error = ""
            break
        except WeightsDownloadError as exc:
            error = str(exc)
            if error.startswith("HTTP 4"):
                break
        except Exception as exc:  # urllib3, socket and http.client errors
            error = _describe(exc)
        time.sleep(RETRY_DELAY * 2**attempt)
    if error:
        kept = (
            f" The partial file {part} is kept and the next call resumes it."
            if part.exists() and part.stat().st_size
            else ""
        )
        raise WeightsDownloadError(
            f"Could not download the {spec.name!r} weights of {'/'.join(spec.models)} from "
            f"{url} ({error}).{kept} Without network: {_manual(spec, target, url)}"
        )
    if spec.file_hash:
        got = _hash(part, spec.hash_algorithm)
        if got != spec.file_hash.lower():
            part.unlink(missing_ok=True)
            raise WeightsDownloadError(
                f"The file downloaded from {url} has {spec.hash_algorithm} {got}, but "
                f"{spec.file_hash} is published for it: it was deleted. Retry, or "
                f"{_manual(spec, target, url)}"
            )
    os.replace(part, target)


def _extracted(archive: Path) -> Path:
    """The directory a slim archive is extracted into."""
    return archive.with_name(archive.name.removesuffix(".tar.gz").removesuffix(".tgz"))


def _extract(spec: PretrainedWeights, archive: Path) -> Path:
    """Extract a slim archive next to it (reading every member: gzip CRC) and return the
    checkpoint prefix."""
    out = _extracted(archive)
    done = out / ".complete"
    prefix = out / str(spec.member)
    if done.exists():
        return prefix
    tmp = out.with_name(out.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            names = tar.getnames()
            kwargs: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, **kwargs)  # noqa: S202 (the data filter refuses unsafe paths)
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise WeightsDownloadError(
            f"{archive} (from {spec.resolved_url}) is not a readable tar archive ({exc}); it was "
            "deleted. Retry to download it again."
        ) from None
    if not any(n == spec.member or n.startswith(f"{spec.member}.") for n in names):
        shutil.rmtree(tmp, ignore_errors=True)
        raise WeightsDownloadError(
            f"{archive} (from {spec.resolved_url}) holds no checkpoint {spec.member!r} "
            f"(members: {sorted(names)[:10]})."
        )
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    done.write_text(spec.resolved_url or "")
    archive.unlink(missing_ok=True)  # the extracted checkpoint is what is kept
    return prefix


def fetch_pretrained(
    spec: PretrainedWeights,
    *,
    cache: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> Path:
    """The local path of a named weight, downloaded and verified on first use.

    Args:
        spec: the registry entry (:func:`find_pretrained`).
        cache: the cache directory (default :func:`cache_dir`).
        progress: show a progress bar; None: only on a terminal.

    Returns:
        The checkpoint prefix (slim archives, extracted) or the file.

    Raises:
        WeightsDownloadError: no URL (FaceNet: the message says where to get it), the network
            is unavailable (the message names the URL and the manual alternative), the hash
            differs (the file is deleted) or the archive is unreadable.
    """
    root = Path(cache) if cache is not None else cache_dir()
    target = root / spec.filename
    if spec.url is None:
        raise WeightsDownloadError(f"No download link for {spec.name!r}: {spec.note}.")
    if not (
        target.exists() or (spec.kind == "slim" and (_extracted(target) / ".complete").exists())
    ):
        _download(spec, target, progress=progress)
    return _extract(spec, target) if spec.kind == "slim" else target
