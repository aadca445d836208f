"""Short SynthFACS runs of every thesis experiment in docs/seeds.md's reproduction table.

    python benchmarks/thesis_short_runs.py --list
    python benchmarks/thesis_short_runs.py [--only posed2_inception_v4,korber_n1] [--work DIR]
    python benchmarks/thesis_short_runs.py --report     # re-print the table from DIR/results.json
    python benchmarks/thesis_short_runs.py --report --docs docs/seeds.md   # fill the last column

Each row runs the table's own command (``fer-tf-train --config NAME --records R ...``, or its
``--search``) in a subprocess under ``nice -n 19`` with two TensorFlow threads, on SynthFACS
stand-in records written once into ``--work`` (``fer_tf.synthfacs.records.write_records``, or
the dataset's folder layout built with ``fer-tf-build-records``' Python API where the config
needs it: SFEW's two folds for Korber, CK+'s sequences for Athanasiadis 2022), shortened with
``--set`` (a few epochs of a few steps at a small batch, a few evaluation batches) at the
config's own input size. No pretrained weights can be downloaded here, so every model starts
from random initialisation; where a config trains only its last layers (``trainable_scopes``,
``unfreeze_modules``, freezing presets), those are trained on a random backbone.

What it measures, per row: the mean training loss of the first and the last epoch, the
config's headline validation figures on the SynthFACS val split (accuracy for posed/emotion,
Bartissol's pooled total accuracy / F1 / AUC for AUs, MSE for valence/arousal, per-video
majority vote / mean scores for Athanasiadis 2022), a chance reference, and the wall and CPU
seconds per training step (the last epoch's steps, after tracing; CPU seconds are the child
process's user+sys time over the whole run divided by its steps, so they include start-up and
evaluation). It checks that the recipe runs and trains, not the thesis's number: SynthFACS faces
are drawn, and the runs are minutes long.

Results accumulate in ``DIR/results.json`` (one entry per row, rerunning a row replaces it); the
Markdown table is printed at the end and written to ``DIR/results.md``. Heavy run files (model
saves, checkpoints) are deleted after each row; ``history.csv``, ``eval.json`` and
``config.yaml`` stay.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Short-run shapes (epochs, steps per epoch, batch, evaluation batches), sized to a few minutes
# per row on two shared CPU cores at the config's own input size.
BIG = ["train.epochs=3", "train.steps_per_epoch=6", "data.batch_size=8", "train.eval_steps=4"]
HUGE = ["train.epochs=3", "train.steps_per_epoch=4", "data.batch_size=4", "train.eval_steps=4"]
V4_ALL = ["train.epochs=3", "train.steps_per_epoch=6", "data.batch_size=4", "train.eval_steps=4"]
COMMON = [
    "data.test_split=null",
    "train.early_stopping_metric=null",
    "data.shuffle_buffer=256",
]


@dataclass
class Row:
    """One line of the reproduction table and how it is shortened here."""

    key: str
    experiment: str
    config: str
    records: str
    sets: list[str]
    how: str
    search: tuple[str, str, int] | None = None  # (mode, space, trials)
    videos: bool = False
    extra_args: list[str] = field(default_factory=list)


def _rows() -> list[Row]:
    big, huge = BIG, HUGE
    rows = [
        Row(
            "posed2_inception_v4",
            "Christensen 2018, 2 classes, Inception V4",
            "posed2_inception_v4",
            "posed",
            big,
            "from scratch, mode 3 (through Mixed_7b frozen)",
        ),
        Row(
            "posed12_inception_v4",
            "Christensen 2018, 12 classes, Inception V4",
            "posed12_inception_v4",
            "posed",
            V4_ALL,
            "from scratch, all layers trained",
        ),
        Row(
            "posed12_shallow_cnn",
            "Christensen 2018, 12 classes, shallow CNN",
            "posed12_shallow_cnn",
            "posed",
            ["train.epochs=30", "data.batch_size=64", "train.steps_per_epoch=0"],
            "from scratch, the config's batch 64 and lr 5e-5",
        ),
        Row(
            "christensen2018_table4_1",
            "Christensen 2018, Table 4.1 search",
            "posed2_inception_v4",
            "posed",
            ["train.epochs=1", "train.steps_per_epoch=3", "train.eval_steps=2"],
            "truncated: 3 random trials (seed 42) of 3 steps each, batch as sampled",
            search=("random", "christensen2018_table4_1", 3),
        ),
        Row(
            "emotionet60_zero_filled",
            "Bartissol 2017, 60 AUs, Inception V2, zero-filled",
            "emotionet60_zero_filled",
            "au60",
            big,
            "random backbone, logits trained",
        ),
        Row(
            "emotionet60_vgg16",
            "Bartissol 2017, 60 AUs, VGG16",
            "emotionet60_vgg16",
            "au60",
            huge,
            "random backbone, fc6-fc8 trained",
        ),
        Row(
            "emotionet60_masked",
            "Bartissol 2017, 60 AUs, corrected (masked)",
            "emotionet60_masked",
            "au60",
            big,
            "random backbone, logits trained",
        ),
        Row(
            "emotionet11_inception_v2",
            "Bartissol 2017, 11 AUs, Inception V2",
            "emotionet11_inception_v2",
            "au11",
            big,
            "random backbone, logits trained",
        ),
        Row(
            "emotionet11_vgg16",
            "Bartissol 2017, 11 AUs, VGG16",
            "emotionet11_vgg16",
            "au11",
            huge,
            "random backbone, fc6-fc8 trained",
        ),
        Row(
            "bartissol2017_batch",
            "Bartissol 2017, batch sweep",
            "emotionet11_inception_v2",
            "au11",
            ["train.epochs=1", "train.steps_per_epoch=2", "train.eval_steps=2"],
            "truncated: the first 2 grid points (batch 32, 64), 2 steps each",
            search=("grid", "bartissol2017_batch", 2),
        ),
        Row(
            "bartissol2017_lr",
            "Bartissol 2017, learning-rate sweep",
            "emotionet11_inception_v2",
            "au11",
            [
                "train.epochs=1",
                "train.steps_per_epoch=3",
                "data.batch_size=8",
                "train.eval_steps=4",
            ],
            "truncated: the 3 grid points, 3 steps each at batch 8",
            search=("grid", "bartissol2017_lr", 0),
        ),
        Row(
            "emotionet_va_inception_v2",
            "Bartissol 2017, valence/arousal, Inception V2",
            "emotionet_va_inception_v2",
            "au11",
            big,
            "random backbone, logits trained",
        ),
        Row(
            "emotionet_va_vgg16",
            "Bartissol 2017, valence/arousal, VGG16",
            "emotionet_va_vgg16",
            "au11",
            huge,
            "random backbone, fc6-fc8 trained",
        ),
        Row(
            "jaffe_fer2013_cnn",
            "Amaya & Dave, CNN 3 on JAFFE",
            "jaffe_fer2013_cnn",
            "jaffe",
            ["train.epochs=30"],
            "from scratch, JAFFE-sized set (213 faces, 10 identities)",
        ),
    ]
    for n in (1, 2, 4, 6, 9):
        rows.append(
            Row(
                f"korber_n{n}",
                f"Korber, FaceNet unfreeze N = {n} (50/50)",
                "korber_sfew_facenet",
                "sfew",
                [*big, f"model.unfreeze_modules={n}"],
                "random backbone (trainable counts: below), SFEW layout, fold 0 of 2",
            )
        )
    rows.append(
        Row(
            "korber_80_20",
            "Korber, N = 9, 80/20",
            "korber_sfew_facenet_80_20",
            "sfew5",
            big,
            "random backbone, N = 9, SFEW layout, fold 0 of 5",
        )
    )
    for key, label in (
        ("athanasiadis2022_impl1_vgg16", "Athanasiadis 2022, implementation 1"),
        ("athanasiadis2022_impl2_vgg16_reduced", "Athanasiadis 2022, implementation 2"),
        ("emotion_vgg16_weighted", "Athanasiadis 2022, implementation 3"),
        ("athanasiadis2022_impl4_vgg16_reduced_weighted", "Athanasiadis 2022, implementation 4"),
    ):
        rows.append(
            Row(
                key,
                label,
                key,
                "ckplus",
                huge,
                "random backbone, fc6-fc8 trained, CK+ layout",
                videos=True,
            )
        )
    return rows


# --------------------------------------------------------------------------- records


def _sfew(out: Path, folds: int) -> None:
    """SFEW 2.0's folder layout with SynthFACS faces (as examples/08), built with ``folds``."""
    import cv2

    from fer_tf.build import build_records
    from fer_tf.sources.sfew import SFEW_CLASSES
    from fer_tf.synthfacs import sample

    tree = out.parent / (out.name + "_layout")
    folder_of = {emotion: cls for cls, emotion in SFEW_CLASSES.items()}
    for i, face in enumerate(sample(350, seed=8, size=96, num_identities=40)):
        folder = tree / ("Train" if i % 4 else "Val") / folder_of[face.emotion_name]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"Movie{i % 9}_{i:09d}_00000005.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
    build_records(tree, out, source="sfew", folds=folds, workers=0, progress=False)


def _ckplus(out: Path) -> None:
    """CK+'s layout with SynthFACS sequences (as examples/09), later half of each kept."""
    import cv2

    from fer_tf.build import build_records
    from fer_tf.facs import EMOTION_PROTOTYPES
    from fer_tf.testing.miniatures_sequences import render_sequence

    codes = {"anger": 1, "disgust": 3, "fear": 4, "happiness": 5, "sadness": 6, "surprise": 7}
    names = list(codes)
    ck = out.parent / (out.name + "_layout")
    for s in range(24):
        subject = f"S{s + 1:03d}"
        for k in range(3):
            emotion = names[(s + 2 * k) % 6]
            number = f"{k + 1:03d}"
            frames = render_sequence(EMOTION_PROTOTYPES[emotion], 8, seed=1000 + s, size=96)
            folder = ck / "cohn-kanade-images" / subject / number
            folder.mkdir(parents=True, exist_ok=True)
            for i, rgb in enumerate(frames, 1):
                path = folder / f"{subject}_{number}_{i:08d}.png"
                cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            label = ck / "Emotion" / subject / number / f"{subject}_{number}_00000008_emotion.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"   {codes[emotion]:.7e}\n")
    build_records(
        ck,
        out,
        source="ckplus",
        source_options={"frames": "later-half"},
        folds=0,
        val_fraction=0.34,
        workers=0,
        progress=False,
    )


def _write_set(name: str, out: Path) -> None:
    from fer_tf.synthfacs.records import write_records

    six = {e: 1.0 for e in ("happiness", "disgust", "fear", "surprise", "anger", "sadness")}
    if name == "posed":  # NVIE-like: non-neutral faces, half posed, subjects held out
        write_records(out, 300, seed=0, size=128, emotion_weights=six, num_identities=30)
    elif name == "au11":  # EmotioNet's 11 AUs (also valence/arousal)
        write_records(out, 300, seed=1, size=128, aus="emotionet11", num_identities=30)
    elif name == "au60":  # all 60 AU columns, 30% unknown (EmotioNet's 999s)
        write_records(
            out, 300, seed=2, size=128, aus="all60", unknown_fraction=0.3, num_identities=30
        )
    elif name == "jaffe":  # JAFFE-sized: 213 faces of 10 identities
        write_records(out, 213, seed=3, size=64, num_identities=10)
    elif name == "sfew":
        _sfew(out, folds=2)
    elif name == "sfew5":
        _sfew(out, folds=5)
    elif name == "ckplus":
        _ckplus(out)
    else:  # pragma: no cover - the row table names only the sets above
        raise ValueError(f"unknown record set {name!r}")


def records_dir(work: Path, name: str) -> Path:
    """The record set ``name`` under ``work``, written on first use."""
    out = work / "records" / name
    if not (out / "manifest.json").exists():
        t0 = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=name + "_", dir=work / "records"))
        _write_set(name, tmp / name)
        shutil.move(str(tmp / name), str(out))
        shutil.rmtree(tmp)
        print(f"records {name}: written in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


# --------------------------------------------------------------------------- running


def _child(cmd: list[str]) -> tuple[int, float, float, str]:
    """Run ``cmd`` niced; return (rc, wall s, child CPU s, output tail)."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}",
        TF_NUM_INTEROP_THREADS="2",
        TF_NUM_INTRAOP_THREADS="2",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["nice", "-n", "19", sys.executable, *cmd],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, wall, cpu, (proc.stdout + proc.stderr)[-3000:]


def _history(run: Path) -> list[dict[str, float]]:
    path = run / "history.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _slim(run: Path) -> None:
    """Delete the heavy files of a run directory (saves, checkpoints)."""
    for p in run.rglob("*"):
        if p.is_dir() and p.name in ("checkpoints", "saved_model"):
            shutil.rmtree(p, ignore_errors=True)
    for p in run.rglob("*"):
        if p.is_file() and p.suffix in (".keras", ".h5"):
            p.unlink()


def _all_absent(records: Path, split: object) -> float | None:
    """Total accuracy of answering "absent" for every known (image, AU) cell of ``split``."""
    manifest = records / "manifest.json"
    if not manifest.exists():
        return None
    stats = json.loads(manifest.read_text()).get("label_stats", {}).get(str(split), {})
    absent, present = sum(stats.get("au_absent", [])), sum(stats.get("au_present", []))
    return absent / (absent + present) if absent + present else None


def _summary(run: Path, cpu: float, steps_total: int) -> dict[str, object]:
    hist = _history(run)
    ev = json.loads((run / "eval.json").read_text()) if (run / "eval.json").exists() else {}
    out: dict[str, object] = {"eval": ev.get("metrics", {}), "chance_loss": ev.get("chance_loss")}
    out["classes"] = len(ev.get("output_names", []))
    confusion = ev.get("confusion_matrix")
    if confusion:  # the share of the largest true class: what always answering it scores
        counts = [sum(r) for r in confusion]
        out["majority"] = max(counts) / max(1, sum(counts))
    if (run / "config.yaml").exists():
        import yaml

        data = (yaml.safe_load((run / "config.yaml").read_text()) or {}).get("data", {})
        out["batch_size"] = data.get("batch_size")
        out["all_absent"] = _all_absent(Path(str(data.get("records"))), data.get("eval_split"))
        out["image_size"] = data.get("image_size")
    out["status"] = ev.get("status")
    if hist:
        last = hist[-1]
        prev_step = hist[-2]["step"] if len(hist) > 1 else 0.0
        out["loss_first"] = hist[0].get("train/loss")
        out["loss_last"] = last.get("train/loss")
        out["epochs"] = len(hist)
        out["steps"] = int(last["step"])
        out["s_per_step"] = last["seconds"] / max(1.0, last["step"] - prev_step)
        out["val_loss"] = [h.get("val/loss") for h in hist]
    out["cpu_s_per_step"] = cpu / max(1, steps_total or int(out.get("steps", 0) or 1))
    return out


def run_row(row: Row, work: Path) -> dict[str, object]:
    """Run one row; return its result entry."""
    records = records_dir(work, row.records)
    run = work / "runs" / row.key
    shutil.rmtree(run, ignore_errors=True)
    sets = [*COMMON, *row.sets]
    cmd = ["-m", "fer_tf.cli.train", "--config", row.config, "--records", str(records)]
    cmd += ["--model-dir", str(run), "--quiet", *row.extra_args]
    if row.search:
        mode, space, trials = row.search
        cmd += ["--search", mode, "--search-space", space, "--trials", str(trials)]
    for s in sets:
        cmd += ["--set", s]
    print(f"== {row.key}: {' '.join(cmd[2:])}", flush=True)
    rc, wall, cpu, tail = _child(cmd)
    entry: dict[str, object] = {
        "key": row.key,
        "experiment": row.experiment,
        "config": row.config,
        "records": row.records,
        "sets": sets,
        "how": row.how,
        "rc": rc,
        "wall_s": wall,
        "cpu_s": cpu,
        "load": os.getloadavg()[0],
    }
    if rc != 0:
        entry["error"] = tail
        print(tail, flush=True)
        return entry
    if row.search:
        entry["trials"] = _search_trials(run)
        steps = sum(int(t.get("steps") or 0) for t in entry["trials"])
        entry["cpu_s_per_step"] = cpu / max(1, steps)
    else:
        entry.update(_summary(run, cpu, 0))
    if row.videos:
        entry["videos"] = _videos(run, records)
    _slim(run)
    entry["cell"] = cell(entry)
    print(f"   {entry['cell']}  [{wall:.0f} s wall, {cpu:.0f} s CPU]", flush=True)
    return entry


def _search_trials(run: Path) -> list[dict[str, object]]:
    with (run / "search.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        hist = _history(Path(r["run_dir"])) if r.get("run_dir") else []
        if hist:
            r["loss_first"] = hist[0].get("train/loss")
            r["loss_last"] = hist[-1].get("train/loss")
            r["s_per_step"] = hist[-1]["seconds"] / max(1.0, hist[-1]["step"])
            r["val_loss"] = hist[-1].get("val/loss")
        if r.get("run_dir"):
            _slim(Path(r["run_dir"]))
    return rows


def _videos(run: Path, records: Path) -> dict[str, object]:
    out = run / "evaluation"
    cmd = ["-m", "fer_tf.cli.evaluate", "--model", str(run), "--records", str(records)]
    cmd += ["--split", "val", "--output-dir", str(out), "--no-plots", "--quiet"]
    rc, _, _, tail = _child(cmd)
    if rc != 0:
        return {"error": tail}
    m = json.loads((out / "metrics.json").read_text())
    v = m.get("videos", {})
    return {
        "frames_accuracy": m.get("metrics", {}).get("accuracy"),
        "count": v.get("count"),
        "methods": {k: d.get("accuracy") for k, d in v.get("methods", {}).items()},
    }


# --------------------------------------------------------------------------- report


def _f(x: object, nd: int = 3) -> str:
    try:
        return f"{float(x):.{nd}f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"


def _metric_text(e: dict[str, object]) -> str:
    m = e.get("eval") or {}
    assert isinstance(m, dict)
    n = int(m.get("examples", 0) or 0)
    if "total_accuracy" in m:
        return (
            f"val ({n} images) total acc. {_f(m['total_accuracy'])}, "
            f"F1 {_f(m.get('f1_micro'))}, AUC {_f(m.get('auc_pooled'))} (all-absent total acc. "
            f"{_f(e.get('all_absent'))})"
        )
    if "mse_mean" in m:  # SynthFACS valence and arousal lie in [-1, 1]
        return (
            f"val ({n} images, valence/arousal in [−1, 1]) MSE {_f(m['mse_mean'])}, RMSE "
            f"{_f(m.get('rmse_mean'))}, Pearson r {_f(m.get('pearson_mean'))}"
        )
    if "accuracy" in m:
        k = int(e.get("classes", 0) or 0)
        chance = f" (chance 1/{k} = {1 / k:.3f}" if k else " ("
        if e.get("majority") is not None:
            chance += f", largest class {_f(e['majority'])}"
        chance += ")"
        if e.get("chance_loss"):
            chance += f", loss {_f(m.get('loss'))} (chance ln {k} = {_f(e['chance_loss'])})"
        return f"val ({n} images) accuracy {_f(m['accuracy'])}{chance}"
    return "no evaluation"


def cell(e: dict[str, object]) -> str:
    """The table cell for one result entry."""
    if e.get("rc"):
        return f"failed (exit {e['rc']}; see results.json)"
    if "trials" in e:
        trials = e["trials"]
        assert isinstance(trials, list)
        parts = []
        for t in trials:
            if t.get("status") == "invalid":
                parts.append(f"trial {t['trial']} invalid ({t.get('note', '')[:60]})")
                continue
            keys = [k for k in t if "." in k and t[k] not in ("", None)]
            choice = ", ".join(f"{k.split('.')[-1]} {t[k]}" for k in keys)
            parts.append(
                f"trial {t['trial']} ({choice}): train loss {_f(t.get('loss_last'))}, "
                f"val {t['metric']} {_f(t['value'])}, val loss {_f(t.get('val_loss'))}"
            )
        return (
            f"{e['how']}: "
            + "; ".join(parts)
            + f"; best (by val {trials[0].get('metric')}) trial {trials[0]['trial']}; whole "
            f"search {float(e['wall_s']):.0f} s wall, {float(e['cpu_s']):.0f} s CPU"
        )
    head = (
        f"{e['how']}; {e.get('epochs')} epochs, {e.get('steps')} steps at batch "
        f"{e.get('batch_size')}, {e.get('image_size')} px: "
        f"train loss {_f(e.get('loss_first'))} → {_f(e.get('loss_last'))}; {_metric_text(e)}"
    )
    v = e.get("videos")
    if isinstance(v, dict) and "methods" in v:
        methods = v["methods"]
        assert isinstance(methods, dict)
        head += (
            f"; per video ({v.get('count')}) vote {_f(methods.get('majority'))}, "
            f"mean {_f(methods.get('mean'))}"
        )
    return head + (
        f"; {_f(e.get('s_per_step'), 2)} s/step (last epoch, wall); whole run "
        f"{float(e['wall_s']):.0f} s wall, {float(e['cpu_s']):.0f} s CPU"
    )


def report(results: dict[str, dict[str, object]], rows: list[Row]) -> str:
    """The Markdown table of every row that has a result."""
    lines = ["| row | experiment | short SynthFACS run | wall s |", "|---|---|---|---|"]
    for row in rows:
        e = results.get(row.key)
        if e is not None:
            lines.append(f"| {row.key} | {row.experiment} | {cell(e)} | {float(e['wall_s']):.0f} |")
    return "\n".join(lines)


# docs/seeds.md's reproduction table: the first cell of a row -> the rows measured for it (with a
# short label where one table row gathers several runs).
DOC_ROWS: dict[str, list[tuple[str, str]]] = {
    "Christensen 2018, posed vs spontaneous, Inception V4": [("posed2_inception_v4", "")],
    "Christensen 2018, 12 classes, Inception V4": [("posed12_inception_v4", "")],
    "Christensen 2018, 12 classes, shallow CNN": [("posed12_shallow_cnn", "")],
    "Christensen 2018, Table 4.1 search": [("christensen2018_table4_1", "")],
    "Bartissol 2017, 60 AUs, Inception V2 (as published)": [("emotionet60_zero_filled", "")],
    "Bartissol 2017, 60 AUs, VGG16": [("emotionet60_vgg16", "")],
    "Bartissol 2017, 60 AUs, corrected": [("emotionet60_masked", "")],
    "Bartissol 2017, 11 AUs, Inception V2": [("emotionet11_inception_v2", "")],
    "Bartissol 2017, 11 AUs, VGG16": [("emotionet11_vgg16", "")],
    "Bartissol 2017, batch and learning-rate sweeps": [
        ("bartissol2017_batch", "batch"),
        ("bartissol2017_lr", "learning rate"),
    ],
    "Bartissol 2017, valence/arousal, Inception V2": [("emotionet_va_inception_v2", "")],
    "Bartissol 2017, valence/arousal, VGG16": [("emotionet_va_vgg16", "")],
    "Amaya & Dave, CNN 3 on JAFFE": [("jaffe_fer2013_cnn", "")],
    "Korber, FaceNet unfreeze N = 1, 2, 4, 6, 9 (50/50)": [
        (f"korber_n{n}", f"N = {n}") for n in (1, 2, 4, 6, 9)
    ],
    "Korber, N = 9, 80/20": [("korber_80_20", "")],
    "Athanasiadis 2022, implementation 1": [("athanasiadis2022_impl1_vgg16", "")],
    "Athanasiadis 2022, implementation 2": [("athanasiadis2022_impl2_vgg16_reduced", "")],
    "Athanasiadis 2022, implementation 3": [("emotion_vgg16_weighted", "")],
    "Athanasiadis 2022, implementation 4": [("athanasiadis2022_impl4_vgg16_reduced_weighted", "")],
}


def doc_cell(results: dict[str, dict[str, object]], keys: list[tuple[str, str]]) -> str | None:
    """The docs table cell for one table row (None while none of its runs has a result)."""
    done = [(results[k], label) for k, label in keys if k in results]
    if not done:
        return None
    if len(keys) == 1:
        return cell(done[0][0])
    if any("trials" in e or e.get("rc") for e, _ in done):
        return " / ".join(f"{label}: {cell(e)}" for e, label in done)
    first = done[0][0]
    parts = []
    for e, label in done:
        m = e.get("eval") or {}
        assert isinstance(m, dict)
        parts.append(
            f"{label}: train loss {_f(e.get('loss_first'))} → {_f(e.get('loss_last'))}, "
            f"val acc. {_f(m.get('accuracy'))}, val loss {_f(m.get('loss'))}, "
            f"{_f(e.get('s_per_step'), 2)} s/step"
        )
    missing = [label for k, label in keys if k not in results]
    k = int(first.get("classes", 0) or 0)
    m0 = first.get("eval") or {}
    assert isinstance(m0, dict)
    return (
        f"{first['how']}; {first.get('epochs')} epochs, {first.get('steps')} steps at batch "
        f"{first.get('batch_size')}, {first.get('image_size')} px each: "
        + "; ".join(parts)
        + f" (val {int(m0.get('examples', 0) or 0)} images; chance 1/{k}, largest class "
        f"{_f(first.get('majority'))}, ln {k} = {_f(first.get('chance_loss'))})"
        + (f"; not yet run: {', '.join(missing)}" if missing else "")
    )


def fill_docs(path: Path, results: dict[str, dict[str, object]]) -> int:
    """Rewrite the last cell of each measured row of the docs table; return rows filled."""
    lines = path.read_text(encoding="utf-8").split("\n")
    filled = 0
    for i, line in enumerate(lines):
        for first, keys in DOC_ROWS.items():
            if line.startswith(f"| {first} |"):
                text = doc_cell(results, keys)
                if text is not None:
                    cells = line.split(" | ")
                    cells[-1] = text.replace("|", "/") + " |"
                    lines[i] = " | ".join(cells)
                    filled += 1
    path.write_text("\n".join(lines), encoding="utf-8")
    return filled


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="", help="comma-separated row keys (default: all)")
    p.add_argument("--list", action="store_true", help="list the rows and exit")
    p.add_argument("--report", action="store_true", help="print the table from results.json")
    p.add_argument("--docs", metavar="SEEDS_MD", help="also fill docs/seeds.md's last column")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "fer_tf_thesis_short_runs"))
    args = p.parse_args(argv)
    rows = _rows()
    if args.list:
        for r in rows:
            print(f"{r.key:46s} {r.config:46s} {r.records:7s} {r.how}")
        return 0
    work = Path(args.work)
    (work / "records").mkdir(parents=True, exist_ok=True)
    path = work / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.report:
        only = [k for k in args.only.split(",") if k]
        unknown = sorted(set(only) - {r.key for r in rows})
        if unknown:
            p.error(f"The 'only' parameter must name rows of --list. Got {unknown} instead.")
        t0 = time.perf_counter()
        for row in rows:
            if only and row.key not in only:
                continue
            results[row.key] = run_row(row, work)
            path.write_text(json.dumps(results, indent=1, default=str))
        print(f"total wall time {time.perf_counter() - t0:.0f} s", flush=True)
    else:  # re-read the kept run files (history.csv, eval.json), so the cells use this code
        how = {r.key: r.how for r in rows}
        for key, e in results.items():
            e["how"] = how.get(key, e.get("how"))
            run = work / "runs" / key
            if not e.get("rc") and "trials" in e and (run / "search.csv").exists():
                e["trials"] = _search_trials(run)
            elif not e.get("rc") and (run / "eval.json").exists():
                e.update(_summary(run, float(e["cpu_s"]), 0))
        path.write_text(json.dumps(results, indent=1, default=str))
    table = report(results, rows)
    (work / "results.md").write_text(table + "\n")
    if args.docs:
        print(f"{fill_docs(Path(args.docs), results)} rows of {args.docs} filled")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
