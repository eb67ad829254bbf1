"""Files bnas-tf writes follow the user's umask, as ``open(path, "w")`` would create them."""

import os
import stat

import pytest

from bnas_tf.files import atomic_write_json, atomic_write_text


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_get_the_umask_mode(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_text(tmp_path / "report.md", "text")
    atomic_write_json(tmp_path / "run" / "metrics.json", {"a": 1})  # a new folder too
    for path in (tmp_path / "report.md", tmp_path / "run" / "metrics.json"):
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, oct(os.stat(path).st_mode)
    assert sorted(os.listdir(tmp_path / "run")) == ["metrics.json"]  # no temporary file left


def test_rewriting_a_file_keeps_its_content_whole(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "state.json"
    atomic_write_json(path, {"round": 1})
    atomic_write_json(path, {"round": 2})
    assert path.read_text().count("round") == 1 and '"round": 2' in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
