"""The ``bnas-tf`` terminal: help without TensorFlow, and library log lines only with ``--verbose``."""

import os
import re
import subprocess
import sys

import pytest

from bnas_tf import native_logs
from bnas_tf.pipeline import cli, commands
from bnas_tf.space import published

# TensorFlow's C++ log lines ("2026-01-01 10:00:00.123456: I tensorflow/...", glog's "I0101 ...") and the notices
# TensorFlow prints when it loads
NATIVE_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |^[IWEF]\d{4} |oneDNN|cuda|TensorRT", re.M)

TINY = ["--cells", "2", "--channels", "8", "--input-shape", "16,16,1"]
HELP_WITHOUT_TENSORFLOW = """
import contextlib, io, sys
from bnas_tf.pipeline import cli
for argv in (["--help"], ["train", "--help"], ["run", "--help"], ["search", "--help"], ["lint", "--help"]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            cli.main(argv)
        except SystemExit as done:
            assert done.code == 0, (argv, done.code)
    assert out.getvalue().startswith("usage: bnas-tf"), (argv, out.getvalue())
assert "tensorflow" not in sys.modules, "--help imported TensorFlow"
print("ok")
"""


def _environment_without_log_level() -> dict:
    return {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}


def test_help_does_not_load_tensorflow():
    done = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TENSORFLOW], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_lint_prints_no_library_log_lines_unless_verbose():
    command = [sys.executable, "-m", "bnas_tf.pipeline.cli", "lint", "p2_bnas_cifar10", *TINY]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=300, env=_environment_without_log_level())
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout.startswith("p2_bnas_cifar10: 2 cells")
    assert NATIVE_LOG_LINE.search(quiet.stdout + quiet.stderr) is None, quiet.stderr[-2000:]

    verbose = subprocess.run(
        [*command, "--verbose"], capture_output=True, text=True, timeout=300, env=_environment_without_log_level()
    )
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    assert verbose.stdout == quiet.stdout
    assert NATIVE_LOG_LINE.search(verbose.stderr), "--verbose should let TensorFlow's own lines through"


def test_every_command_takes_verbose_and_the_help_lists_the_published_genotypes():
    parser = cli.build_parser()
    for name in commands.SUBCOMMANDS:
        argv = [name, "--verbose"] + {"train": [], "convert": ["m", "-o", "x"], "lint": ["t"], "report": ["r"]}.get(
            name, []
        )
        assert parser.parse_args(argv).verbose
    assert commands.published_names() == published.names()


def _write_to_file_descriptor_2(text: str) -> None:
    os.write(2, text.encode())


@pytest.mark.parametrize("quiet", [False, True])
def test_converter_output_is_hidden_only_when_quiet(quiet, monkeypatch, capfd):
    monkeypatch.setattr(native_logs, "_quiet", quiet)
    with native_logs.converter_output_hidden():
        _write_to_file_descriptor_2("native line\n")
        print("python line", file=sys.stderr)
    err = capfd.readouterr().err
    assert "python line" in err
    assert ("native line" in err) is not quiet


def test_hidden_converter_output_is_shown_when_the_conversion_fails(monkeypatch, capfd):
    monkeypatch.setattr(native_logs, "_quiet", True)
    with pytest.raises(RuntimeError, match="conversion failed"):
        with native_logs.converter_output_hidden():
            _write_to_file_descriptor_2("loc(fused): error: why it failed\n")
            raise RuntimeError("conversion failed")
    assert "why it failed" in capfd.readouterr().err
    _write_to_file_descriptor_2("after the block\n")
    assert "after the block" in capfd.readouterr().err


def test_python_stderr_stays_on_the_terminal_while_the_converter_output_is_hidden():
    script = (
        "import os, sys\n"
        "from bnas_tf import native_logs\n"
        "native_logs._quiet = True\n"
        "with native_logs.converter_output_hidden():\n"
        "    os.write(2, b'native line\\n')\n"
        "    print('python line', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "python line\nafter\n"
