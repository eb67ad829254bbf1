"""The stack check names the fix when TensorFlow or Keras is too new for Larq and KerasTuner."""

from importlib import metadata

import pytest

from bnas_tf import stack


def _versions(**installed):
    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    return version


@pytest.mark.parametrize(
    "installed, message",
    [
        ({"tensorflow": "2.16.1", "keras": "3.3.3"}, "found TensorFlow 2.16.1"),
        ({"tensorflow-cpu": "2.17.0"}, "found TensorFlow 2.17.0"),
        ({"tensorflow": "2.15.1", "keras": "3.0.0"}, "found Keras 3.0.0"),
    ],
)
def test_a_too_new_stack_is_refused_with_the_install_command(monkeypatch, installed, message):
    monkeypatch.setattr(stack.metadata, "version", _versions(**installed))
    with pytest.raises(ImportError, match=message) as error:
        stack.check_stack()
    assert "pip install 'tensorflow==2.15.1'" in str(error.value)


def test_the_pinned_stack_passes(monkeypatch):
    monkeypatch.setattr(stack.metadata, "version", _versions(tensorflow="2.15.1", keras="2.15.0"))
    stack.check_stack()
