"""Several worker processes of one search (``tf.distribute.MultiWorkerMirroredStrategy``): who writes, and what
stops the search when a worker is lost.

Every worker runs the same search: the same seed and the same all-reduced scores make the same oracle decisions
in each process, and every worker writes its checkpoints (their reads of per-replica statistics are collective, so
all must take part). Only the chief's folder is kept; the other workers work in a temporary copy of it
(TensorFlow's convention for multi-worker saving), so a rerun of every worker resumes from the chief's last
checkpoint. A collective whose peer died fails after the strategy's ``CommunicationOptions(timeout_seconds=...)``
(without it, it waits forever), and every later collective of the group fails at once: the search stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import tensorflow as tf


def is_chief(strategy) -> bool:
    """Whether this process writes the search's files: always without a strategy or on one host; with
    several workers (MultiWorkerMirroredStrategy) the chief, or worker 0 when the cluster has no chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def worker_directory(directory, project_name: str | None) -> str:
    """A non-chief worker's search folder: a temporary copy of the chief's ``directory/project_name`` (empty when
    it has none yet), so every worker starts from the same search state and weights; the chief's own folder is
    the only one kept (TensorFlow's convention for multi-worker writes). Delete it when the search ends."""
    temporary = tempfile.mkdtemp(prefix="bnas-tf-worker-")
    source = os.path.join(directory or ".", project_name or "untitled_project")
    if os.path.isdir(source):
        shutil.copytree(source, os.path.join(temporary, os.path.basename(source)))
    return temporary


#: What a collective op raises when another worker died or stopped answering (after the strategy's
#: ``CommunicationOptions(timeout_seconds=...)``), and afterwards for every collective of the aborted group.
LOST_WORKER_ERRORS = (
    tf.errors.DeadlineExceededError,
    tf.errors.UnavailableError,
    tf.errors.CancelledError,
    tf.errors.AbortedError,
)


def lost_worker(strategy, error, project_dir: str) -> RuntimeError | None:
    """The error that stops a search whose replicas stopped answering (a killed or lost worker), or None when
    ``error`` is not one (a trial's own failure)."""
    if strategy is None or not isinstance(error, LOST_WORKER_ERRORS):
        return None
    detail = (str(error).splitlines() or [""])[0][:200]
    return RuntimeError(
        f"the {type(strategy).__name__}'s replicas stopped answering ({type(error).__name__}: {detail}): a worker "
        f"was killed, lost or timed out. The search stops at its last committed checkpoint in {project_dir}; start "
        "every worker again with the same settings to resume"
    )
