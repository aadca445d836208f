# %% [markdown]
# # 01 · SynthFACS faces and the record builder
#
# `fer_tf` runs offline on **SynthFACS**, a procedural face renderer that knows exactly which
# facial action units (AUs) it drew. This notebook
#
# 1. renders faces with chosen AU intensities and an AU grid,
# 2. samples labelled faces (AUs, emotion, valence/arousal, posed/spontaneous, subject),
# 3. serves faces on a **loopback mirror** (127.0.0.1) behind an EmotioNet-format spreadsheet,
#    with a few broken URLs, and turns the spreadsheet into TFRecords with `build_records`,
# 4. inspects the manifest, `errors.jsonl` and a record.
#
# In Colab, install the package first (from a checkout: `pip install -e .`). Runs in well under a
# minute on a CPU.

# %%
import json
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import tensorflow as tf

from fer_tf import facs, records, synthfacs
from fer_tf.build import build_records
from fer_tf.testing.mirror import Mirror

WORK = Path(tempfile.mkdtemp(prefix="fer_tf_example01_"))
print("working directory:", WORK)

# %% [markdown]
# ## Render a face
#
# `render_face` takes AU number → intensity in [0, 1]. The same `rng` seed gives the same person
# in the same scene, so only the expression changes.

# %%
expressions = {
    "neutral": {},
    "happiness (AU6+12)": {6: 0.9, 12: 1.0},
    "surprise (AU1+2+5+26)": {1: 1.0, 2: 1.0, 5: 0.8, 26: 0.9},
    "anger (AU4+5+7+23)": {4: 1.0, 5: 0.6, 7: 0.8, 23: 0.9},
}
fig, axes = plt.subplots(1, len(expressions), figsize=(10, 2.8))
for ax, (title, aus) in zip(axes, expressions.items()):
    ax.imshow(synthfacs.render_face(aus, size=128, rng=7))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## AU grid: one row per rendered AU, intensity 0 → 1

# %%
intensities = (0.0, 0.5, 1.0)
grid_aus = synthfacs.RENDERED_AUS
fig, axes = plt.subplots(3, len(grid_aus), figsize=(len(grid_aus) * 0.9, 3))
for col, au in enumerate(grid_aus):
    for row, v in enumerate(intensities):
        axes[row, col].imshow(synthfacs.render_face({au: v}, size=64, rng=3))
        axes[row, col].axis("off")
    axes[0, col].set_title(f"AU{au}", fontsize=8)
fig.suptitle("rows: intensity 0, 0.5, 1", fontsize=9)
plt.show()
print(", ".join(f"AU{au} {facs.au_name(au)}" for au in grid_aus[:5]), "...")

# %% [markdown]
# ## Labelled samples
#
# `sample(n, seed=...)` draws identities, emotions (with their AU prototypes), pose, lighting, and
# derives valence/arousal and posed/spontaneous. Face `i` of a seed is always the same face.

# %%
faces = list(synthfacs.sample(6, seed=0, size=96, aus="synthfacs15"))
fig, axes = plt.subplots(1, len(faces), figsize=(12, 2.6))
for ax, face in zip(axes, faces):
    present = [f"{a}" for a, v in zip(face.aus, face.au_labels) if v == 1]
    ax.imshow(face.image)
    ax.set_title(f"{facs.EMOTIONS[face.emotion]}\nAU {','.join(present) or '-'}", fontsize=8)
    ax.axis("off")
plt.show()
face = faces[0]
print(
    f"subject {face.subject}, valence {face.valence:+.2f}, arousal {face.arousal:+.2f}, "
    f"posed {face.posed}"
)

# %% [markdown]
# ## From an EmotioNet spreadsheet to records, over a loopback mirror
#
# The mirror serves SynthFACS faces on 127.0.0.1 and writes the spreadsheet (EmotioNet's manual
# layout: URL, AU1..AU60 with 999 = not scored, plus optional columns). We break a few URLs
# (a 404, a 503 that keeps failing, an HTML page, a truncated JPEG) and serve one face as a PNG
# with alpha. `build_records` is the library side of `fer-tf-build-records`; loopback addresses
# are refused unless `allow_private_hosts=True` (spreadsheets are third-party input).

# %%
faults = {2: "404", 5: "503", 8: "html", 11: "truncated"}
with Mirror(24, faults=faults, variants={14: "png_alpha"}, size=64, retry_after=0) as mirror:
    sheet = mirror.write_spreadsheet(WORK / "urls.xlsx", header=True, meta=True)
    summary = build_records(
        sheet,
        WORK / "records",
        aus="synthfacs15",
        split_by="subject",
        val_fraction=0.25,
        allow_private_hosts=True,
        timeout=2.0,
        retries=1,
        workers=0,
    )
    expected = {it.url: it.expected_category for it in mirror.bad}
print(summary.table())

# %% [markdown]
# ## What the build wrote
#
# `manifest.json` records the arguments, the inputs (with SHA-256), the AU columns, per-split
# counts and label statistics, and failures per category; `errors.jsonl` has one line per failed
# URL. The counts always add up: rows = written + failed + skipped.

# %%
manifest = records.read_manifest(WORK / "records")
print("au_ids:", manifest["au_ids"])
print("splits:", {k: v["count"] for k, v in manifest["splits"].items()})
print("counts:", manifest["counts"])
print("failures:", {k: v for k, v in manifest["failures"].items() if v})
for line in (WORK / "records" / "errors.jsonl").read_text().splitlines():
    err = json.loads(line)
    ok = "as expected" if expected.get(err["source"]) == err["category"] else "UNEXPECTED"
    print(f"  row {err['row']:>3} {err['category']:<14} {err['detail'][:50]:<50} {ok}")
c = manifest["counts"]
assert c["rows"] == c["written"] + c["failed"] + c["skipped"]

# %% [markdown]
# ## Read a record back
#
# Records are `tf.train.Example`s in schema v1 (`docs/records.md`); `decode_example` gives a
# Python view. Unknown AU labels (999 in the sheet) are -1, never 0.

# %%
first = next(iter(tf.data.TFRecordDataset(records.list_shards(WORK / "records", "train"))))
rec = records.decode_example(first.numpy())
labels = dict(zip(manifest["au_ids"], rec.au))
print(f"{rec.source}\nsubject {rec.subject}, {rec.width}x{rec.height}, AU labels {labels}")
plt.imshow(tf.io.decode_jpeg(rec.image).numpy())
plt.axis("off")
plt.show()

# %% [markdown]
# The working directory (spreadsheet, records, download cache) is removed at the end; copy it
# first to keep the records.

# %%
shutil.rmtree(WORK)
print("removed", WORK)
