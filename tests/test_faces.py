"""Viola–Jones face crops, histogram equalisation and grey → RGB (fer_tf.preprocessing.faces)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_tf.preprocessing import faces

skdata = pytest.importorskip("skimage.data")

# Hand-checked landmarks of the astronaut portrait (x, y): eyes, nose tip, mouth centre.
ASTRONAUT_LANDMARKS = [(203, 100), (247, 102), (224, 128), (225, 147)]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def lfw() -> np.ndarray:
    # Bundled with scikit-image (no download): 200 grey 25x25 images, 100 faces then 100 non-faces.
    return skdata.lfw_subset()


def _inside(point: tuple[int, int], box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = box
    return x <= point[0] < x + w and y <= point[1] < y + h


def test_faces_module_does_not_import_tensorflow():
    code = "import fer_tf.preprocessing.faces, sys; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_astronaut_box_covers_the_face(astronaut):
    boxes = faces.detect_faces(astronaut)
    assert len(boxes) == 1
    box = boxes[0]
    assert all(_inside(p, box) for p in ASTRONAUT_LANDMARKS)
    # A face box, not half the picture.
    assert 60 <= box[2] <= 160 and 60 <= box[3] <= 160
    assert faces.detect_largest_face(astronaut) == box


def test_astronaut_grey_input_gives_the_same_box(astronaut):
    grey = faces.rgb_to_gray(astronaut)
    assert faces.detect_faces(grey) == faces.detect_faces(astronaut)
    assert faces.detect_faces(grey[:, :, None]) == faces.detect_faces(astronaut)


def test_crop_face_margin_and_size(astronaut):
    box = faces.detect_largest_face(astronaut)
    crop, info = faces.crop_face(astronaut, margin=0.2)
    assert info["face_found"] and info["box"] == box and info["fallback"] is None
    x, y, w, h = box
    x0, y0, x1, y1 = info["crop_box"]
    assert (x0, y0) == (round(x - 0.2 * w), round(y - 0.2 * h))
    assert (x1, y1) == (round(x + w + 0.2 * w), round(y + h + 0.2 * h))
    np.testing.assert_array_equal(crop, astronaut[y0:y1, x0:x1])
    resized, _ = faces.crop_face(astronaut, size=64)
    assert resized.shape == (64, 64, 3) and resized.dtype == np.uint8
    resized, _ = faces.crop_face(astronaut, size=(48, 40))
    assert resized.shape == (48, 40, 3)


def test_crop_face_margin_is_clipped_at_the_border(astronaut):
    box = faces.detect_largest_face(astronaut)
    x, y, w, h = box
    shifted = astronaut[y - 10 :, x - 10 :]  # face 10 px from the top-left corner
    _, info = faces.crop_face(shifted, margin=0.5)
    assert info["face_found"]
    assert info["crop_box"][:2] == (0, 0)


def test_lfw_faces_are_found_and_non_faces_rejected(lfw):
    def prep(im: np.ndarray) -> np.ndarray:
        big = cv2.resize((im * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        return cv2.copyMakeBorder(big, 20, 20, 20, 20, cv2.BORDER_REPLICATE)

    face_imgs, other_imgs = lfw[:40], lfw[100:140]
    found = 0
    for im in face_imgs:
        box = faces.detect_largest_face(prep(im), min_neighbors=3, min_size=(24, 24))
        if box is not None:
            found += 1
            # The face fills the 25x25 crop (100x100 after scaling, at offset 20): the box
            # covers the centre and is most of the crop.
            assert _inside((70, 70), box) and box[2] >= 60
    false = sum(
        faces.detect_largest_face(prep(im), min_neighbors=3, min_size=(24, 24)) is not None
        for im in other_imgs
    )
    assert found >= 36  # 97 of the 100 faces at these settings
    assert false <= 2


def test_fallback_keep_and_drop():
    blank = np.full((80, 100, 3), 127, np.uint8)
    out, info = faces.crop_face(blank, fallback="keep")
    assert not info["face_found"] and info["fallback"] == "keep" and info["box"] is None
    np.testing.assert_array_equal(out, blank)
    out, info = faces.crop_face(blank, fallback="keep", size=32)
    assert out.shape == (32, 32, 3)
    out, info = faces.crop_face(blank, fallback="drop")
    assert out is None and info["fallback"] == "drop" and info["crop_box"] is None
    assert faces.detect_faces(blank) == []
    assert faces.detect_largest_face(blank) is None


def test_equalize_matches_opencv_on_full_range():
    rng = np.random.default_rng(0)
    grey = np.clip(rng.normal(100, 20, (40, 50)), 0, 255).astype(np.uint8)
    ours = faces.equalize(grey, keep_range=False)
    ref = cv2.equalizeHist(grey)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_equalize_keeps_the_input_range_by_default():
    rng = np.random.default_rng(1)
    grey = np.clip(rng.normal(100, 10, (40, 50)), 60, 160).astype(np.uint8)
    out = faces.equalize(grey)
    assert out.min() == grey.min() and out.max() == grey.max()
    # Contrast is spread: the histogram is flatter (higher std).
    assert out.std() > grey.std() * 1.5
    # Monotone mapping: the order of pixel values is kept.
    order = np.argsort(grey.ravel(), kind="stable")
    assert np.all(np.diff(out.ravel()[order].astype(int)) >= 0)


def test_equalize_colour_uses_luminance(astronaut):
    dark = (astronaut // 3).astype(np.uint8)
    out = faces.equalize(dark, keep_range=False)
    assert out.shape == dark.shape and out.dtype == np.uint8
    y_in = cv2.cvtColor(dark, cv2.COLOR_RGB2YCrCb)[:, :, 0]
    y_out = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[:, :, 0]
    assert y_out.std() > y_in.std() * 1.5
    # Grey-as-RGB stays grey.
    grey3 = faces.gray_to_rgb(faces.rgb_to_gray(dark))
    eq = faces.equalize(grey3)
    assert np.array_equal(eq[:, :, 0], eq[:, :, 1]) and np.array_equal(eq[:, :, 0], eq[:, :, 2])
    # (H, W, 1) keeps its shape; a flat image is unchanged.
    assert faces.equalize(grey3[:, :, :1]).shape == grey3[:, :, :1].shape
    flat = np.full((5, 5), 9, np.uint8)
    np.testing.assert_array_equal(faces.equalize(flat), flat)


def test_gray_to_rgb_and_back():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = faces.gray_to_rgb(grey)
    assert rgb.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], grey)
    np.testing.assert_array_equal(faces.gray_to_rgb(grey[:, :, None]), rgb)
    assert faces.gray_to_rgb(rgb) is rgb
    np.testing.assert_array_equal(faces.rgb_to_gray(rgb), grey)


def test_preprocess_face_chain(astronaut):
    out, info = faces.preprocess_face(astronaut, grayscale=True, equalize_hist=True, size=(56, 48))
    assert out.shape == (56, 48, 3) and out.dtype == np.uint8
    assert info["face_found"]
    assert np.array_equal(out[:, :, 0], out[:, :, 2])
    out, info = faces.preprocess_face(astronaut, face_crop=False, size=32)
    assert out.shape == (32, 32, 3) and info["face_found"] is None
    out, info = faces.preprocess_face(np.zeros((50, 50), np.uint8), fallback="drop")
    assert out is None and info["fallback"] == "drop"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: faces.detect_faces([[1, 2]]), "NumPy uint8 array"),
        (lambda: faces.detect_faces(np.zeros((4, 4, 2), np.uint8)), "shape"),
        (lambda: faces.detect_faces(np.zeros((4, 4), np.float32)), "dtype uint8"),
        (lambda: faces.detect_faces(np.zeros((4, 4), np.uint8), scale_factor=1.0), "scale_factor"),
        (lambda: faces.detect_faces(np.zeros((4, 4), np.uint8), min_neighbors=-1), "min_neighbors"),
        (lambda: faces.detect_faces(np.zeros((4, 4), np.uint8), min_size=(0, 3)), "min_size"),
        (lambda: faces.detect_faces(np.zeros((4, 4), np.uint8), cascade="nope.xml"), "cascade"),
        (lambda: faces.crop_face(np.zeros((4, 4), np.uint8), fallback="skip"), "fallback"),
        (lambda: faces.crop_face(np.zeros((4, 4), np.uint8), margin=-0.1), "margin"),
        (lambda: faces.crop_face(np.zeros((4, 4), np.uint8), size="big"), "size"),
    ],
)
def test_bad_inputs_give_clear_errors(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
