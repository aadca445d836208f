"""MTCNN detection with landmarks, the batched detect_faces API and five-point alignment, on real
photographs shipped with scikit-image (no download)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from fer_tf.preprocessing import faces
from fer_tf.preprocessing.faces import Face, align_face, crop_box, detect_faces, umeyama


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def lfw_faces() -> list[np.ndarray]:
    # 25x25 grey faces: pad them so MTCNN's smallest window (12 px) sees the whole face.
    lfw = skdata.lfw_subset()[:12]
    ims = [(im * 255).round().astype(np.uint8) for im in lfw]
    return [np.pad(cv2.resize(im, (50, 50)), 25, mode="edge") for im in ims]


def test_mtcnn_finds_the_astronaut_with_plausible_landmarks(astronaut):
    (found,) = detect_faces([astronaut], "mtcnn")
    assert len(found) == 1
    f = found[0]
    assert 0.9 <= f.score <= 1.0 and 60 <= f.w <= 160 and 60 <= f.h <= 160
    le, re, nose, ml, mr = f.landmarks
    assert le[0] < re[0] and ml[0] < mr[0]  # image-left first
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])  # eyes above nose above mouth
    for x, y in f.landmarks:
        assert f.x <= x <= f.x + f.w and f.y <= y <= f.y + f.h


def test_mtcnn_on_lfw_faces_batched_equals_one_by_one(lfw_faces):
    batched = detect_faces(lfw_faces, "mtcnn", min_score=0.5, batch_size=8)
    found = sum(bool(b) for b in batched)
    assert found >= 9, [len(b) for b in batched]
    single = [detect_faces([im], "mtcnn", min_score=0.5)[0] for im in lfw_faces[:3]]
    for a, b in zip(batched[:3], single):
        assert [f.box for f in a] == [f.box for f in b]


def test_haar_and_none_detectors(astronaut):
    haar, none = detect_faces([astronaut], "haar")[0], detect_faces([astronaut], "none")[0]
    assert len(haar) == 1 and haar[0].score == 1.0 and haar[0].landmarks is None
    assert haar[0].box == faces.detect_faces(astronaut)[0]  # the older one-image call
    assert none[0].box == (0, 0, 512, 512) and none[0].score is None


def test_blank_and_tiny_images_have_no_faces():
    out = detect_faces([np.zeros((64, 64, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], "mtcnn")
    assert out == [[], []]


def test_bad_detector_and_images():
    with pytest.raises(ValueError, match="detector"):
        detect_faces([np.zeros((9, 9, 3), np.uint8)], "dlib")
    with pytest.raises(TypeError, match="sequence"):
        detect_faces("face.jpg")
    with pytest.raises(ValueError, match="dtype uint8"):
        detect_faces([np.zeros((9, 9, 3), np.float32)], "haar")


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a = math.radians(20)
    rot = 1.7 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    dst = src @ rot.T + [5.0, -3.0]
    np.testing.assert_allclose(umeyama(src, dst), np.hstack([rot, [[5.0], [-3.0]]]), atol=1e-9)


def _eye_angle(image: np.ndarray) -> float:
    (f,) = detect_faces([image], "mtcnn", min_score=0.5)[0][:1]
    (lx, ly), (rx, ry) = f.landmarks[:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def test_alignment_levels_the_eyes_of_a_rotated_photo(astronaut):
    h, w = astronaut.shape[:2]
    m = cv2.getRotationMatrix2D((223.0, 120.0), 15.0, 1.0)
    rotated = cv2.warpAffine(astronaut, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    assert abs(_eye_angle(rotated)) > 10  # the tilt is really there
    (face,) = detect_faces([rotated], "mtcnn")[0][:1]
    aligned = align_face(rotated, face, size=160, margin=0.3)
    assert aligned.shape == (160, 160, 3) and aligned.dtype == np.uint8
    assert abs(_eye_angle(aligned)) < 3.0
    # Non-square output and no margin: the landmarks land on the scaled template.
    out = align_face(rotated, face, size=(112, 96))
    assert out.shape == (112, 96, 3)


def test_without_landmarks_a_square_crop_with_margin(astronaut):
    face = Face(200, 100, 60, 80)
    out = align_face(astronaut, face, size=64, margin=0.25)
    side = 80 * 1.5  # the longer side grown by the margin on both sides
    expected = cv2.resize(astronaut[int(140 - side / 2) : int(140 + side / 2), 170:290], (64, 64))
    assert out.shape == (64, 64, 3)
    assert np.abs(out.astype(int) - expected.astype(int)).mean() < 12
    crop = crop_box(astronaut, face, 0.5)
    assert crop.shape == (160, 120, 3)  # 80 + 2 * 40 rows, 60 + 2 * 30 columns
    edge = crop_box(astronaut, Face(0, 0, 40, 40), 0.5)
    assert edge.shape == (60, 60, 3)  # clipped at the border, as the record builder's crop


def test_compiled_networks_give_the_eager_package_boxes(astronaut, lfw_faces):
    from mtcnn import MTCNN

    eager = MTCNN()
    for im in [astronaut, *(faces.gray_to_rgb(f) for f in lfw_faces[:3])]:
        ours = detect_faces([im], "mtcnn", min_score=0.0)[0]
        theirs = sorted(eager.detect_faces(im), key=lambda f: -f["box"][2] * f["box"][3])
        assert [f.box for f in ours] == [tuple(f["box"]) for f in theirs]
        for f, g in zip(ours, theirs):
            assert f.score == pytest.approx(g["confidence"], abs=1e-5)
