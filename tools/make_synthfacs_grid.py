"""Render the SynthFACS figures for docs/synthfacs.md.

- ``docs/img/synthfacs_grid.png``: one row per rendered AU, intensity 0 -> 1 left to right, one
  identity, frontal pose, flat light;
- ``docs/img/synthfacs_samples.png``: faces as ``sample()`` yields them, captioned with emotion,
  posed (P) / spontaneous (S) / neutral (-) and the present AUs.

    python tools/make_synthfacs_grid.py [--out docs/img] [--size 96]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fer_tf import facs
from fer_tf import synthfacs as S

INTENSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _label(img: np.ndarray, text: str, scale: float = 0.4) -> np.ndarray:
    cv2.putText(img, text, (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1)
    return img


def au_grid(size: int) -> np.ndarray:
    """One row per rendered AU; a caption column names the AU."""
    ident = S.Identity(hair_style=1, glasses=0)
    rows = []
    for au in S.RENDERED_AUS:
        cells = [
            S.render_face(
                {au: v}, size=size, rng=3, identity=ident, pose=S.Pose(), lighting=S.Lighting()
            )
            for v in INTENSITIES
        ]
        caption = np.full((size, int(size * 1.9), 3), 255, np.uint8)
        cv2.putText(caption, f"AU{au}", (6, size // 2 - 4), 0, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        name = facs.au_name(au)
        cv2.putText(caption, name, (6, size // 2 + 16), 0, 0.36, (60, 60, 60), 1, cv2.LINE_AA)
        rows.append(np.hstack([caption, *cells]))
    header = np.full((22, rows[0].shape[1], 3), 255, np.uint8)
    for k, v in enumerate(INTENSITIES):
        x = int(size * 1.9) + k * size + size // 2 - 14
        cv2.putText(header, f"{v:.2f}", (x, 16), 0, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([header, *rows])


def sample_grid(size: int, rows: int = 4, cols: int = 6) -> np.ndarray:
    """Faces from ``sample()`` with a caption strip each."""
    cells = []
    for f in S.sample(rows * cols, seed=2024, size=size):
        present = [au for au, v in zip(f.aus, f.au_labels) if v == 1]
        kind = {1: "P", 0: "S", -1: "-"}[f.posed]
        strip = np.full((30, size, 3), 255, np.uint8)
        cv2.putText(strip, f"{f.emotion_name[:5]} {kind}", (2, 11), 0, 0.36, (0, 0, 0), 1)
        aus = ",".join(map(str, present)) or "none"
        cv2.putText(strip, aus, (2, 25), 0, 0.3 if len(aus) > 16 else 0.34, (60, 60, 60), 1)
        cells.append(np.vstack([f.image, strip]))
    return np.vstack([np.hstack(cells[r * cols : (r + 1) * cols]) for r in range(rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description="Render the SynthFACS documentation figures.")
    parser.add_argument("--out", default="docs/img", help="output directory (default docs/img)")
    parser.add_argument("--size", type=int, default=96, help="face size in pixels (default 96)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, img in (
        ("synthfacs_grid.png", au_grid(args.size)),
        ("synthfacs_samples.png", sample_grid(args.size)),
    ):
        path = out / name
        cv2.imwrite(
            str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
        )
        print(f"wrote {path} ({img.shape[1]}x{img.shape[0]}, {path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
