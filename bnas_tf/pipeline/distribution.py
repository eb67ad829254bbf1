"""``--strategy``: the tf.distribute strategy a search (and its retraining) runs under.

``mirrored`` trains one supernet on every local device (GPUs of one host; on a CPU-only host, the one CPU),
``multi_worker`` on the devices of several hosts, the processes named by ``TF_CONFIG`` (docs/scaling_out.md).
Every process of a multi-worker run runs the same command with the same ``--output``; only the chief (task
``chief``, else ``worker`` 0) writes the run folder, the others train the same steps and write nothing there
(their search state is a temporary copy of the chief's: :mod:`bnas_tf.tuners.workers`).
"""

from __future__ import annotations

import contextlib
import json
import os

NAMES = ("mirrored", "multi_worker")
#: how long a multi-worker collective (an all-reduce) waits for a missing worker before the run stops
TIMEOUT_VARIABLE = "BNAS_TF_COLLECTIVE_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 300.0
TF_CONFIG_EXAMPLE = (
    '\'{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, "task": {"type": "worker", "index": 0}}\''
)


def tf_config_problem(text: str | None) -> str | None:
    """What is wrong with a ``TF_CONFIG`` value for a multi-worker run, or None when it names a cluster of workers
    (and an optional chief) and this process's task in it."""
    if not text:
        return "TF_CONFIG is not set"
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        return f"TF_CONFIG is not JSON ({error.msg} at character {error.pos})"
    if not isinstance(config, dict):
        return "TF_CONFIG must be a JSON object with 'cluster' and 'task'"
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not any(cluster.get(kind) for kind in ("chief", "worker")):
        return "TF_CONFIG's 'cluster' must list the addresses of its 'worker' (and optional 'chief') processes"
    for kind, addresses in cluster.items():
        if kind not in ("chief", "worker", "evaluator") or not isinstance(addresses, list):
            return f"TF_CONFIG's cluster has {kind!r}: a multi-worker run has 'chief' and 'worker' address lists"
    if len(cluster.get("chief") or []) > 1:
        return "TF_CONFIG's cluster has more than one chief"
    if not isinstance(task, dict) or task.get("type") not in cluster:
        return "TF_CONFIG's 'task' must name this process's type ('chief' or 'worker') in the cluster"
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        return f"TF_CONFIG's task index {index!r} is not one of the cluster's {task['type']} processes"
    return None


def collective_timeout() -> float:
    """Seconds a collective waits for a missing worker: ``BNAS_TF_COLLECTIVE_TIMEOUT`` (default 300)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{TIMEOUT_VARIABLE} must be a positive number of seconds (got {text!r})")
    return seconds


def make(name: str | None, *, output: str | None = None):
    """The strategy ``--strategy name`` asks for (None: none). Call it before any other TensorFlow work: a
    multi-worker strategy must be made before the process's first op. ``output``: the command's ``--output``,
    which every worker of a multi-worker run must name (the chief's run folder, where a rerun resumes from).

    Raises:
        ValueError: an unknown name, or ``multi_worker`` without a usable ``TF_CONFIG`` or an ``--output``.
    """
    if name is None:
        return None
    if name not in NAMES:
        raise ValueError(f"--strategy must be one of {', '.join(NAMES)} (got {name!r})")
    if name == "multi_worker":
        problem = tf_config_problem(os.environ.get("TF_CONFIG"))
        if problem:
            raise ValueError(
                f"--strategy multi_worker reads the cluster from TF_CONFIG: {problem}; set it in every process, "
                f"e.g. TF_CONFIG={TF_CONFIG_EXAMPLE} with index 0, 1, ... (docs/scaling_out.md)"
            )
        if not output:
            raise ValueError(
                "--strategy multi_worker needs --output DIR, the same run folder in every process (a shared "
                "filesystem across hosts): the chief writes it and every worker resumes from its checkpoints"
            )
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout())
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def writes_results(strategy) -> bool:
    """Whether this process writes the run folder under ``strategy`` (None, mirrored: yes; multi-worker: the
    chief only, :func:`bnas_tf.tuners.workers.is_chief`)."""
    if strategy is None:
        return True
    from bnas_tf.tuners.workers import is_chief  # lazy: loads TensorFlow, which `make(None)` callers skip

    return is_chief(strategy)


def scope(strategy):
    """``strategy.scope()``, or no scope for None."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def describe(strategy) -> str:
    """One phrase for progress lines: 'N replicas (mirrored)' and the like; '' for None."""
    if strategy is None:
        return ""
    kind = "multi-worker" if getattr(strategy, "cluster_resolver", None) is not None else "mirrored"
    return f"{strategy.num_replicas_in_sync} replica(s), {kind}"
