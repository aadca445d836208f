# %% [markdown]
# # 07 · Amaya & Dave: small CNNs on FER2013
#
# **The thesis's question.** Amaya & Dave (Chalmers, TMS016 project) ask how far a small
# convolutional network trained from scratch gets on FER2013 — 48×48 grey faces from the web, seven
# emotions — and what its layers learn. They train three CNNs of growing regularisation and keep
# the third, "no overfit" one (four convolutions, dropout 0.5 around the first dense layer, SGD,
# 36×36 grey crops, 50 epochs): 59.74% on the 3,500 test faces. They look inside it through its
# first-layer filters and the feature maps of one face.
#
# This notebook walks the same chain on SynthFACS stand-ins written in FER2013's own layout
# (`fer2013.csv`: `emotion`, `pixels`, `Usage`), shrunk to run in seconds: a few hundred faces,
# the shipped `fer2013_cnn` config at its own 36 px, 3 epochs. Removes its working directory at
# the end.

# %%
import csv
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fer_tf.build import build_records
from fer_tf.config import load_config
from fer_tf.evaluation import diagnostics
from fer_tf.sources.fer2013 import FER2013_NAMES
from fer_tf.synthfacs import sample
from fer_tf.training.experiment import run_experiment

WORK = Path(tempfile.mkdtemp(prefix="fer_tf_example07_"))  # removed in the last cell
print("working directory:", WORK)

# %% [markdown]
# ## The data: FER2013's layout, SynthFACS faces
#
# FER2013 is one CSV: the emotion index (FER2013's order: anger, disgust, fear, happiness,
# sadness, surprise, neutral), 2,304 grey pixel values and the `Usage` (Training / PublicTest /
# PrivateTest → train / val / test). We write 420 SynthFACS faces (48 px, grey) in that layout.
# For the real dataset, unpack `fer2013.csv` into a folder and run
#
# ```bash
# fer-tf-build-records --source fer2013 --input FER2013_DIR --output-dir records/fer2013
# ```

# %%
data_dir = WORK / "fer2013"
data_dir.mkdir()
usage = ["Training"] * 300 + ["PublicTest"] * 60 + ["PrivateTest"] * 60
with open(data_dir / "fer2013.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["emotion", "pixels", "Usage"])
    for face, use in zip(sample(len(usage), seed=7, size=48, pose_jitter=0.3), usage):
        grey = (face.image.astype(np.float32) @ [0.299, 0.587, 0.114]).astype(np.uint8)
        label = FER2013_NAMES.index(face.emotion_name)
        w.writerow([label, " ".join(map(str, grey.ravel())), use])

summary = build_records(data_dir, WORK / "records", source="fer2013", workers=0, progress=False)
print(summary.table())

# %% [markdown]
# ## The model and its shipped config
#
# `fer-tf-train --config fer2013_cnn` is the thesis's CNN 3 (`fer-tf-train --list` names every
# shipped config; `fer2013_cnn_v1` and `_v2` are CNNs 1 and 2). We keep the architecture, input
# (36 px grey) and optimiser and shrink only the schedule. The real run:
#
# ```bash
# fer-tf-train --config fer2013_cnn --records records/fer2013
# ```

# %%
config = load_config(
    "fer2013_cnn",
    [
        f"data.records={WORK / 'records'}",
        f"run.model_dir={WORK / 'run'}",
        "train.epochs=3",
        "data.batch_size=32",
    ],
)
result = run_experiment(config, progress=False, log=lambda *a: None)
RUN = Path(result.run_dir)
print("test:", {k: round(v, 3) for k, v in result.eval["test"]["metrics"].items() if "acc" in k})

# %% [markdown]
# ## Diagnostics: filters and feature maps
#
# The thesis shows the first convolution's filters and what each layer makes of one face.
# `diagnostics.plot_filters` and `diagnostics.plot_feature_maps` draw both for any model built by
# `fer_tf.models` (`fer-tf-diagnose --model RUN --records R` writes them to files).

# %%
from fer_tf.evaluation.evaluator import load_model  # noqa: E402
from fer_tf.evaluation.runs import load_run  # noqa: E402
from fer_tf.models.endpoints import list_endpoints  # noqa: E402

model = load_model(load_run(RUN))
print("end points:", list_endpoints(model))
diagnostics.plot_filters(model, max_filters=32)
plt.show()

# %% [markdown]
# `diagnostics.diagnose_run` (the `fer-tf-diagnose` command) writes the filters, the feature maps
# of the first end points for one validation face (read with training's own pipeline: grey,
# 36 px), a grid of predictions and the angular separation; we show two of its figures.

# %%
written = diagnostics.diagnose_run(RUN, WORK / "diagnostics", end_points=list_endpoints(model)[:3])
print(written)
for name in ("feature_maps.png", "predictions.png"):
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.imshow(plt.imread(WORK / "diagnostics" / name))
    ax.axis("off")
    plt.show()

# %% [markdown]
# ## Result beside the thesis
#
# SynthFACS faces are drawn, not photographed, and this run is a few hundred faces for 3 epochs:
# its numbers are **not comparable** to the thesis's; they show the chain works end to end.

# %%
print("| run | test accuracy |\n|---|---|")
print("| Amaya & Dave CNN 3, FER2013, 50 epochs (§3.3) | 59.74% |")
print(
    f"| this notebook, SynthFACS (420 faces), 3 epochs; chance 14% | {result.eval['test']['metrics']['accuracy']:.1%} |"
)

# %% [markdown]
# ## Clean up

# %%
shutil.rmtree(WORK)
print("removed", WORK)
