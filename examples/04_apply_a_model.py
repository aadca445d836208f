# %% [markdown]
# # 04 · Apply a trained model: photos, a video, thresholds and a TFLite export
#
# From a trained run to answers on real media, the way `fer-tf-predict`, `fer-tf-evaluate` and
# `fer-tf-export` do it, through their Python API:
#
# 1. train a tiny AU detector on a few hundred SynthFACS faces (notebook 03's recipe, smaller:
#    `tiny_cnn` at 32 px, 12 epochs; a toy model, not a good one),
# 2. `Predictor.from_run`: one table row per face, on SynthFACS faces and on a real photograph
#    (scikit-image's astronaut, faces found by MTCNN),
# 3. a short video of a surprise forming → `predict_video`, the AU probabilities frame by frame and
#    the per-video summary (Athanasiadis 2022: majority vote against mean scores),
# 4. `evaluate(..., calibrate_thresholds=True)`: per-AU thresholds stored with the run and used by
#    the predictor from then on,
# 5. export to TFLite and `Predictor.from_export`: the export answers with the same table.
#
# Runs in well under a minute on a CPU and removes its working directory at the end.

# %%
import shutil
import tempfile
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from skimage import data as skdata

from fer_tf import Predictor, synthfacs
from fer_tf.config import load_config
from fer_tf.evaluation import evaluate
from fer_tf.inference.export import export_model
from fer_tf.training.experiment import run_experiment

WORK = Path(tempfile.mkdtemp(prefix="fer_tf_example04_"))  # removed in the last cell
print("working directory:", WORK)

# %% [markdown]
# ## A trained run
#
# Any `fer-tf-train` run directory will do (`make demo` writes a better one to
# `runs/demo/train`). Here: 800 SynthFACS faces at 48 px, identities held out for `val`, the
# `demo_au` experiment (8 AUs) shrunk to `tiny_cnn` at 32 px for 12 epochs. It learns the brow
# and jaw AUs (AU1, AU2, AU4, AU26) first; AU6/AU12 need `make demo`'s 3,200 faces and 15 epochs.

# %%
synthfacs.write_records(WORK / "records", 800, seed=0, size=48, val_fraction=0.25)
config = load_config(
    "demo_au",
    [
        f"data.records={WORK / 'records'}",
        f"run.model_dir={WORK / 'run'}",
        "model.name=tiny_cnn",
        "data.image_size=32",
        "train.epochs=12",
        "optimizer.learning_rate=0.02",
    ],
)
result = run_experiment(config, progress=False, log=lambda *a: None)
RUN = Path(result.run_dir)
print("run directory:", RUN.name, sorted(p.name for p in RUN.iterdir()))
print(
    f"held-out mean AU F1 after {config.train.epochs} epochs: {result.eval['metrics']['f1_mean']:.2f}"
)

# %% [markdown]
# ## Predict on images
#
# `Predictor.from_run` reads the model and what it was trained with (task, AUs, input size,
# normalisation, thresholds, how the training faces were cropped). The records hold whole
# SynthFACS faces, not detector crops, so on real media the predictor finds faces with MTCNN by
# default; `detector="none"` treats each image as one face, as the training images were.
#
# Inputs can be files, folders (recursive), videos and arrays. One row per face; an image without
# a face still gets a row (`face` = -1), and a bad file gets a row with the reason in `error`.

# %%
faces_dir = WORK / "faces"
faces_dir.mkdir()
smiles = {"neutral": {}, "smile": {6: 0.9, 12: 1.0}, "surprise": {1: 1.0, 2: 1.0, 5: 0.8, 26: 0.9}}
for name, aus in smiles.items():
    Image.fromarray(synthfacs.render_face(aus, size=128, rng=3)).save(faces_dir / f"{name}.png")
(faces_dir / "broken.jpg").write_bytes(b"not a JPEG")

whole = Predictor.from_run(RUN, detector="none")
table = whole.predict([faces_dir])
cols = ["input", "face", "AU1", "AU2", "AU4", "AU26", "AU1_present", "AU26_present", "error"]
table["input"] = table["input"].map(lambda p: Path(p).name)
table["error"] = table["error"].str[:48]
print(table[cols].round(2).to_string())

# %% [markdown]
# A real photograph: MTCNN (the `mtcnn` package, its weights inside the wheel) finds the face and
# its five landmarks; the box grown by the margin is what the model sees. The toy model has never
# seen a real face, so read its AU columns as a demonstration of the table, not as a judgement.

# %%
astronaut = skdata.astronaut()  # uint8 RGB, 512 x 512
detect = Predictor.from_run(RUN)  # detector: MTCNN
photo = detect.predict(astronaut)
print(
    photo[["input", "face", "x", "y", "w", "h", "face_score", "AU1", "AU26", "AU26_present"]].round(
        3
    )
)
r = photo.iloc[0]
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(astronaut)
ax.add_patch(plt.Rectangle((r.x, r.y), r.w, r.h, fill=False, color="lime", lw=2))
ax.set_title(f"MTCNN face, score {r.face_score:.3f}", fontsize=9)
ax.axis("off")
plt.show()

# %% [markdown]
# ## A video: a surprise forming
#
# 40 frames at 10 frames/s of one SynthFACS person whose surprise (brows raised, AU1 + AU2, jaw
# dropped, AU26) rises from nothing to full between frames 10 and 30, written as an MJPG AVI with OpenCV. `predict_video` reads the
# frames in order on a reader thread (`every_n_frames=` or `fps=` sample them) and takes
# `time_s` from the container.

# %%
video = WORK / "smile.avi"
writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 128))
for i in range(40):
    k = float(np.clip((i - 10) / 20, 0.0, 1.0))
    frame = synthfacs.render_face({1: k, 2: k, 5: 0.8 * k, 26: 0.9 * k}, size=128, rng=3)
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
writer.release()

frames = whole.predict_video(video)
print(
    len(frames),
    "rows;",
    frames[["frame", "time_s", "AU1", "AU2", "AU26", "AU26_present"]].iloc[::8].round(2),
)

fig, ax = plt.subplots(figsize=(7, 3))
for au in ("AU1", "AU2", "AU4", "AU12", "AU26"):
    ax.plot(frames["time_s"], frames[au], label=au)
ax.axhline(0.5, color="grey", ls=":", lw=1)
ax.set_xlabel("time (s)")
ax.set_ylabel("probability")
ax.set_title(
    "AU probabilities frame by frame (AU1, AU2, AU26 drawn rising from 1 s to 3 s)", fontsize=9
)
ax.legend(ncol=5, fontsize=8)
plt.show()

# %% [markdown]
# ### The per-video summary
#
# Athanasiadis (2022) judges videos, not frames, in two ways: the **majority vote** over the
# frames' decisions and the decision on the **mean scores**. For AUs: `AU<n>_present_vote` (present
# in most frames), `AU<n>_present_mean` (mean probability at or above the threshold), plus the mean
# and peak probability. `fer-tf-predict --summary summary.csv` writes the same table. Here the
# surprise is strong in only part of the frames, so vote and mean can disagree.

# %%
summary = whole.summarize(frames)
print(summary.drop(columns="input").T.head(16).to_string())

# %% [markdown]
# ## Evaluate and calibrate the thresholds
#
# `evaluate` (the `fer-tf-evaluate` command) scores the run on any split of any records with
# training's own evaluation pipeline. `calibrate_thresholds=True` picks, per AU, the cut that
# maximises F1 on that split and stores it in the run directory (`thresholds.json`); predictions
# and exports use it from then on. F1 on the calibration split is optimistic: calibrate on `val`
# and report on a `test` split. Command line:
#
# ```bash
# fer-tf-evaluate --model RUN --records RECORDS --split val --calibrate-thresholds --output-dir ev
# ```

# %%
ev = evaluate(RUN, WORK / "records", split="val", calibrate_thresholds=True, plots=False)
print("thresholds:", dict(zip(config.data.aus.split(","), np.round(ev.thresholds, 2).tolist())))
print(
    f"mean AU F1 on val: {ev.metrics_at_default['f1_mean']:.3f} at 0.5, "
    f"{ev.metrics['f1_mean']:.3f} at the calibrated thresholds (in-sample)"
)
print(sorted(p.name for p in RUN.iterdir() if p.suffix == ".json"))

# %% [markdown]
# ## Export to TFLite and predict with the export
#
# `export_model` (the `fer-tf-export` command) writes a `.tflite` that takes uint8 face crops,
# normalises inside the graph, returns activated scores and carries its metadata (task, AU ids,
# the calibrated thresholds, input size, face preprocessing). `Predictor.from_export` reads it:
# the same table as the run directory. (The export takes uint8 crops where the run's Keras model
# takes the float crops before rounding, so probabilities differ by a few thousandths at most.)

# %%
tflite = export_model(RUN, "tflite", WORK / "au.tflite")
print(tflite.name, f"{tflite.stat().st_size:,} bytes")
after = Predictor.from_run(RUN, detector="none").predict_video(video)  # calibrated thresholds
lite = Predictor.from_export(tflite, detector="none").predict_video(video)
au_cols = [c for c in lite.columns if c.startswith("AU") and not c.endswith("_present")]
present = [c for c in lite.columns if c.endswith("_present")]
print("columns equal:", list(lite.columns) == list(after.columns))
print(
    "max |TFLite - Keras| probability:", float(np.abs(lite[au_cols] - after[au_cols]).max().max())
)
print("AU decisions equal:", bool((lite[present] == after[present]).all().all()))

# %% [markdown]
# ## Clean up
#
# The working directory holds the records, the run (checkpoints, `best.keras`, a SavedModel), the
# video and the export. Copy what you want to keep before this cell removes it.

# %%
shutil.rmtree(WORK)
print("removed", WORK)
