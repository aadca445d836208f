"""Package-level promises: cheap import, fast --help, console scripts installed."""

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def test_import_fer_tf_does_not_import_tensorflow():
    code = (
        "import sys, fer_tf, fer_tf.facs, fer_tf.config, fer_tf.records, fer_tf.data, "
        "fer_tf.cli.build_records, fer_tf.cli.train, fer_tf.cli.evaluate, fer_tf.evaluation, "
        "fer_tf.cli.predict, fer_tf.cli.export, fer_tf.cli.baseline, fer_tf.cli.diagnose, fer_tf.evaluation.baseline, "
        "fer_tf.evaluation.diagnostics, fer_tf.inference.metadata, fer_tf.sources.base, "
        "fer_tf.evaluation.runs, fer_tf.evaluation.thresholds, fer_tf.evaluation.videos\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "script, module",
    [
        ("fer-tf-build-records", "build_records"),
        ("fer-tf-train", "train"),
        ("fer-tf-evaluate", "evaluate"),
        ("fer-tf-predict", "predict"),
        ("fer-tf-export", "export"),
        ("fer-tf-baseline", "baseline"),
        ("fer-tf-diagnose", "diagnose"),
    ],
)
def test_cli_help_works_without_tensorflow(script, module):
    exe = BIN / script
    assert exe.exists(), f"console script {script} is not installed"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert script in out.stdout and "--" in out.stdout
    # --help must stay instant: importing TensorFlow is what would make it slow (seconds), so
    # check the cause rather than timing the symptom.
    code = (
        f"import sys\nfrom fer_tf.cli.{module} import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "sys.exit(1 if bad else 0)"
    )
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert probe.returncode == 0, "--help imported TensorFlow: " + probe.stderr[-2000:]


def test_version_and_lazy_submodules():
    import fer_tf

    assert fer_tf.__version__
    assert fer_tf.facs.parse_aus("1") == (1,)
    with pytest.raises(AttributeError):
        fer_tf.no_such_module  # noqa: B018
