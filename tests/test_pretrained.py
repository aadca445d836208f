"""Named weights (``weights="imagenet"``): download into a cache, verify, resume, clear errors.

Nothing leaves the machine: a local HTTP server on 127.0.0.1 serves small files built here (a
tiny_cnn TF-Slim checkpoint in a tar.gz, as TF-Slim publishes, and a Keras ``.weights.h5``), and
the registry gets test entries pointing at it; the cache is a temporary ``FER_TF_HOME``.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fer_tf.config import ConfigError, load_config  # noqa: E402
from fer_tf.models import create_model, load_weights, slim_variable_map  # noqa: E402
from fer_tf.models import pretrained as pt  # noqa: E402
from fer_tf.tasks import task_from_config  # noqa: E402
from fer_tf.training.experiment import build_model  # noqa: E402
from fer_tf.training.validate import check_model  # noqa: E402

SHAPE = (32, 32, 3)


class _Server:
    """Serves ``files`` (path -> bytes) with Range support; records every request; can cut a
    response short once (``cut[path] = bytes sent before the connection drops``)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cut = server.cut.pop(self.path, None)
                self.wfile.write(body[start:cut] if cut is not None else body[start:])
                if cut is not None:
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _model(classes: int = 3, seed: int = 0):
    tf.keras.utils.set_random_seed(seed)
    return create_model("tiny_cnn", input_shape=SHAPE, classes=classes)


def _slim_archive(values: dict[str, np.ndarray], tmp: Path) -> bytes:
    """A TF-Slim-style archive: ``tiny_cnn.ckpt`` (a V1 checkpoint file, as in TF-Slim's 2016
    archives) plus ``global_step``."""
    ckpt = tmp / "tiny_cnn.ckpt"
    names = [*values, "global_step"]
    data = [tf.constant(v) for v in values.values()] + [tf.constant(np.int64(7))]
    tf.raw_ops.Save(filename=str(ckpt), tensor_names=names, data=data)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(ckpt, arcname="tiny_cnn.ckpt")
    return buf.getvalue()


@pytest.fixture(scope="module")
def source():
    return _model(seed=1)


@pytest.fixture(scope="module")
def served(source, tmp_path_factory) -> Iterator[_Server]:
    tmp = tmp_path_factory.mktemp("served")
    values = {n: v.numpy() for n, v in slim_variable_map(source).items()}
    source.save_weights(str(tmp / "tiny.weights.h5"))
    server = _Server(
        {
            "/w/tiny_cnn_2026.tar.gz": _slim_archive(values, tmp),
            "/w/tiny.weights.h5": (tmp / "tiny.weights.h5").read_bytes(),
        }
    )
    yield server
    server.close()


@pytest.fixture
def registry(served, tmp_path, monkeypatch):
    """Test entries for tiny_cnn pointing at the local server; a fresh cache per test."""
    monkeypatch.setattr(pt, "PRETRAINED", list(pt.PRETRAINED))
    monkeypatch.setattr(pt, "RETRY_DELAY", 0.0)
    monkeypatch.setenv(pt.HOME_ENV, str(tmp_path / "home"))
    h5 = served.files["/w/tiny.weights.h5"]
    common = {"scope": "tiny_cnn", "models": ("tiny_cnn",), "classes": 3, "licence": "test"}
    pt.register_pretrained(
        pt.PretrainedWeights(
            name="tiny-imagenet",
            url=f"{served.base}/w/tiny_cnn_2026.tar.gz",
            filename="tiny_cnn_2026.tar.gz",
            kind="slim",
            member="tiny_cnn.ckpt",
            **common,
        )
    )
    pt.register_pretrained(
        pt.PretrainedWeights(
            name="tiny-h5",
            url=f"{served.base}/w/tiny.weights.h5",
            filename="tiny.weights.h5",
            kind="keras",
            file_hash=hashlib.sha256(h5).hexdigest(),
            **common,
        )
    )
    served.requests.clear()
    return served


def _same(a, b) -> bool:
    return all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights))


def test_a_named_slim_archive_downloads_once_into_the_cache_and_loads(source, registry, tmp_path):
    model = create_model("tiny_cnn", input_shape=SHAPE, classes=3, weights="tiny-imagenet")
    assert _same(model, source)
    cached = tmp_path / "home" / "models" / "tiny_cnn_2026" / "tiny_cnn.ckpt"
    assert cached.is_file() and (cached.parent / ".complete").is_file()
    assert registry.requests == [("/w/tiny_cnn_2026.tar.gz", None)]
    # The second call uses the cache: the server sees no request.
    again = _model(seed=5)
    report = load_weights(again, "tiny-imagenet")
    assert _same(again, source) and registry.requests == [("/w/tiny_cnn_2026.tar.gz", None)]
    assert report.kind == "slim" and report.loaded == len(slim_variable_map(source))


def test_new_classes_leave_the_class_layer_to_train(source, registry):
    model = create_model("tiny_cnn", input_shape=SHAPE, classes=5, weights="tiny-imagenet")
    mapping, src = slim_variable_map(model), slim_variable_map(source)
    for name, var in mapping.items():
        if name.startswith("tiny_cnn/logits"):
            assert var.shape != src[name].shape
        else:
            np.testing.assert_array_equal(var.numpy(), src[name].numpy())


def test_a_keras_file_is_verified_by_its_hash_and_a_mismatch_is_deleted(
    source, registry, tmp_path, monkeypatch
):
    model = create_model("tiny_cnn", input_shape=SHAPE, classes=3, weights="tiny-h5")
    assert _same(model, source)
    assert (tmp_path / "home" / "models" / "tiny.weights.h5").is_file()
    spec = pt.find_pretrained("tiny-h5", model="tiny_cnn")
    bad = pt.PretrainedWeights(**{**spec.__dict__, "file_hash": "0" * 64})
    cache = tmp_path / "other"
    with pytest.raises(pt.WeightsDownloadError) as err:
        pt.fetch_pretrained(bad, cache=cache)
    msg = str(err.value)
    assert "sha256" in msg and "0" * 64 in msg and spec.url in msg and "deleted" in msg
    assert not any(cache.iterdir())  # neither the file nor its .part is left


def test_an_interrupted_download_resumes_with_a_range_request(source, registry, monkeypatch):
    monkeypatch.setattr(pt, "_CHUNK", 4096)  # bytes reach the .part before the connection drops
    body = registry.files["/w/tiny_cnn_2026.tar.gz"]
    registry.cut["/w/tiny_cnn_2026.tar.gz"] = len(body) // 2
    model = create_model("tiny_cnn", input_shape=SHAPE, classes=3, weights="tiny-imagenet")
    assert _same(model, source)
    (first, no_range), (second, rng) = registry.requests
    assert first == second == "/w/tiny_cnn_2026.tar.gz" and no_range is None
    # The retry asks only for what the .part lacks (whole chunks written before the drop).
    resumed_at = int(rng.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(body) // 2


def test_an_unreachable_server_names_the_url_and_the_manual_alternative(registry, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(pt.URL_ENV, f"http://127.0.0.1:{port}/mirror")
    url = f"http://127.0.0.1:{port}/mirror/tiny_cnn_2026.tar.gz"
    with pytest.raises(pt.WeightsDownloadError) as err:
        create_model("tiny_cnn", input_shape=SHAPE, classes=3, weights="tiny-imagenet")
    msg = str(err.value)
    assert url in msg and "connection" in msg, msg
    assert "download" in msg and "yourself" in msg and "tar -xzf" in msg and "weights=" in msg


def test_unknown_names_get_a_did_you_mean_and_are_not_taken_for_missing_files(
    registry, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymodel.index").write_bytes(b"")
    assert not pt.is_pretrained_name("mymodel")  # a slim prefix here is a path, not a name
    assert pt.is_pretrained_name("imagenet") and pt.is_pretrained_name("imagnet")
    with pytest.raises(ValueError, match="Did you mean 'tiny-imagenet'") as err:
        create_model("tiny_cnn", input_shape=SHAPE, weights="tiny-imagenett")
    assert "no file" not in str(err.value)
    with pytest.raises(ValueError, match=r"\['casia-webface', 'vggface2'\]"):
        create_model("inception_resnet_v1", weights="imagenet")
    assert registry.requests == []


def test_facenet_names_say_where_the_checkpoints_come_from(registry):
    spec = pt.find_pretrained("vggface2", model="inception_resnet_v1")
    with pytest.raises(pt.WeightsDownloadError) as err:
        pt.fetch_pretrained(spec)
    msg = str(err.value)
    assert "20180402-114759" in msg and "davidsandberg/facenet" in msg and "weights=" in msg


def test_configs_accept_a_name_and_build_with_it(source, registry):
    overrides = ["model.name=tiny_cnn", "data.image_size=32"]
    cfg = load_config("demo_au", [*overrides, "model.weights=tiny-imagnet"])
    with pytest.raises(ConfigError, match="model.weights.*Did you mean 'tiny-imagenet'"):
        check_model(cfg, task_from_config(cfg))
    cfg = load_config("demo_au", [*overrides, "model.weights=tiny-imagenet"])
    lines: list[str] = []
    model = build_model(cfg, task_from_config(cfg), log=lines.append)
    assert lines[0].startswith("restored ") and "tiny-imagenet" in lines[0]
    src = slim_variable_map(source)
    for name, var in slim_variable_map(model).items():
        if not name.startswith("tiny_cnn/logits"):
            np.testing.assert_array_equal(var.numpy(), src[name].numpy())


def test_the_registry_records_every_published_weight():
    for spec in pt.list_pretrained():
        assert spec.licence and spec.source and spec.size, spec
        if spec.url is None:
            assert "davidsandberg/facenet" in spec.note
        else:
            assert spec.url.endswith(spec.filename)
    for model in ("inception_v4", "inception_v2", "vgg16", "vgg16_reduced_fc"):
        assert "imagenet" in pt.pretrained_names(model)
    keras = [p for p in pt.list_pretrained("vgg16") if p.kind == "keras_vgg16"]
    assert {p.top for p in keras} == {True, False} and all(p.hash_algorithm == "md5" for p in keras)


def _keras_vgg16_notop_h5(path: Path) -> dict[str, list[np.ndarray]]:
    """A file in Keras-applications' legacy VGG16 layout (``layer_names``/``weight_names``)."""
    import h5py

    rng = np.random.default_rng(0)
    layers: dict[str, list[np.ndarray]] = {}
    cin = 3
    for b, reps, cout in ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)):
        for i in range(1, reps + 1):
            kernel = rng.standard_normal((3, 3, cin, cout), dtype=np.float32)
            layers[f"block{b}_conv{i}"] = [kernel, rng.standard_normal(cout, dtype=np.float32)]
            cin = cout
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in layers]
        for name, (kernel, bias) in layers.items():
            g = f.create_group(name)
            g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            g.create_dataset(f"{name}/kernel:0", data=kernel)
            g.create_dataset(f"{name}/bias:0", data=bias)
    return layers


def test_the_keras_vgg16_backbone_file_is_md5_checked_and_loads_as_rgb(registry, tmp_path):
    layers = _keras_vgg16_notop_h5(tmp_path / "notop.h5")
    body = (tmp_path / "notop.h5").read_bytes()
    registry.files["/w/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"] = body
    real = pt.find_pretrained("imagenet", model="vgg16", top=False)
    assert real.top is False and real.filename.endswith("_notop.h5")
    pt.register_pretrained(
        pt.PretrainedWeights(
            **{
                **real.__dict__,
                "name": "imagenet-test",
                "url": f"{registry.base}/w/{real.filename}",
                "file_hash": hashlib.md5(body).hexdigest(),
            }
        )
    )
    model = create_model("vgg16", include_top=False, input_shape=SHAPE, weights="imagenet-test")
    mapping = slim_variable_map(model)
    first = mapping["vgg_16/conv1/conv1_1/weights"].numpy()
    np.testing.assert_array_equal(first, layers["block1_conv1"][0][:, :, ::-1, :])  # BGR -> RGB
    np.testing.assert_array_equal(
        mapping["vgg_16/conv5/conv5_3/biases"].numpy(), layers["block5_conv3"][1]
    )
    # The same file as a local path goes through the same Keras-VGG16 loader (not model.load_weights).
    local = create_model("vgg16", include_top=False, input_shape=SHAPE, weights=None)
    report = load_weights(local, str(tmp_path / "notop.h5"))
    assert report.kind == "slim" and report.loaded == 26
    np.testing.assert_array_equal(slim_variable_map(local)["vgg_16/conv1/conv1_1/weights"], first)


def test_class_layers_and_resized_optional_layers_are_left_to_train():
    """What a named weight restores: class layers by the classes (1001 vs 1000 drops slim's
    background row), optional scopes (VGG16's fc6/fc7) by their sizes in the file."""
    from fer_tf.models.weights import _named_exclusions

    model = _model(classes=3)
    spec = pt.PretrainedWeights(
        "x", "tiny_cnn", ("tiny_cnn",), None, "x", "slim", classes=3,
        optional_scopes=("tiny_cnn/conv3",), extra_variables=("tiny_cnn/mean_rgb",),
    )  # fmt: skip
    same = {"tiny_cnn/conv3/weights": (3, 3, 32, 64)}
    assert _named_exclusions(model, spec, same, False) == (["tiny_cnn/mean_rgb"], "keep")
    narrower = {"tiny_cnn/conv3/weights": (3, 3, 32, 16)}
    scopes, _ = _named_exclusions(model, spec, narrower, False)
    assert scopes == ["tiny_cnn/mean_rgb", "tiny_cnn/conv3"]
    scopes, _ = _named_exclusions(model, spec, same, True)  # fine-tuning: class layers excluded
    assert "tiny_cnn/logits" in scopes
    one_more = pt.PretrainedWeights(**{**spec.__dict__, "classes": 4})
    assert _named_exclusions(model, one_more, same, False)[1] == "drop"
    other = pt.PretrainedWeights(**{**spec.__dict__, "classes": 1000})
    assert "tiny_cnn/logits" in _named_exclusions(model, other, same, False)[0]
