"""``--strategy``'s choices without TensorFlow: which TF_CONFIG a multi-worker run accepts, which process writes the
run folder, and how long a collective waits for a missing worker."""

import json

import pytest

from bnas_tf.pipeline import commands, distribution

TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}, "task": {"type": "worker", "index": 1}}


def test_the_command_line_choices_are_the_strategies_made():
    assert commands.DISTRIBUTION_STRATEGIES == distribution.NAMES


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "TF_CONFIG is not set"),
        ("", "TF_CONFIG is not set"),
        ("{cluster", "TF_CONFIG is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "'cluster' must list the addresses"),
        ('{"cluster": {"ps": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker"}}', "cluster has 'ps'"),
        ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief"}}', "more than one chief"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief"}}', "'task' must name this process's type"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task index 1 is not one"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": -1}}', "task index -1 is not one"),
    ],
)
def test_a_cluster_that_cannot_run_is_named(text, problem):
    assert problem in distribution.tf_config_problem(text)


def test_a_cluster_of_workers_with_or_without_a_chief_runs():
    assert distribution.tf_config_problem(json.dumps(TWO_WORKERS)) is None
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "chief", "index": 0}}
    assert distribution.tf_config_problem(json.dumps(with_chief)) is None


def test_the_collective_timeout_is_a_positive_number_of_seconds(monkeypatch):
    monkeypatch.delenv(distribution.TIMEOUT_VARIABLE, raising=False)
    assert distribution.collective_timeout() == 300.0
    monkeypatch.setenv(distribution.TIMEOUT_VARIABLE, "42.5")
    assert distribution.collective_timeout() == 42.5
    for bad in ("0", "-3", "inf", "nan", "soon"):
        monkeypatch.setenv(distribution.TIMEOUT_VARIABLE, bad)
        with pytest.raises(ValueError, match="BNAS_TF_COLLECTIVE_TIMEOUT must be a positive number of seconds"):
            distribution.collective_timeout()


def test_no_strategy_writes_here_and_has_no_scope():
    assert distribution.make(None) is None
    assert distribution.writes_results(None)
    assert distribution.describe(None) == ""
    with distribution.scope(None):
        pass


def test_a_multi_worker_run_names_its_run_folder(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    with pytest.raises(ValueError, match="--strategy multi_worker needs --output DIR, the same run folder"):
        distribution.make("multi_worker", output=None)
