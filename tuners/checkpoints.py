"""Checkpoints of a weight-sharing search: the supernet's whole training state, so a killed search resumes with
the weights it had (DESIGN ``tuners``: the tuner owns the weights, "checkpointed so resume keeps them").

A checkpoint is one TensorFlow checkpoint bundle (``tf.train.load_checkpoint`` reads it) written by a single
``SaveV2`` op, committed by a JSON pointer ``latest.json`` beside it: a crash before the pointer is written leaves
the previous checkpoint in force. The pointer also names the checkpoint before it, which is kept too, and carries a
JSON record (the tuner stores the results of the trials the weights finished).
"""

from __future__ import annotations

import os

import tensorflow as tf

from bnas_tf.files import atomic_write_json, read_json

POINTER = "latest.json"
#: Checkpoint key of the supernet's trained epochs (the key of its next data passes); older bnas-tf versions did
#: not write it, and a checkpoint without it leaves the count as it is.
EPOCHS = "epochs"


def search_state(supernet, weights, accumulators: dict, alpha_optimizer, epochs_trained=None) -> dict:
    """Every variable of the search state by checkpoint key: ``supernet``'s variables (``v<i>``), the momentum
    buffers ``accumulators[id(w)]`` of ``weights`` (``m<i>``), the α optimizer's (``a<i>``) and the count of
    training calls ``epochs_trained`` (:data:`EPOCHS`; None: not kept). Matched by position, so a change to the
    supernet's layer walk makes older checkpoints unreadable (a clear error, see :func:`restore`)."""
    state = {f"v{i}": v for i, v in enumerate(supernet.all_variables())}
    state.update({f"m{i}": accumulators[id(w)] for i, w in enumerate(weights)})
    state.update({f"a{i}": v for i, v in enumerate(alpha_optimizer.variables)})
    if epochs_trained is not None:
        state[EPOCHS] = epochs_trained
    return state


def legacy_checkpoint(state: dict, alpha_optimizer) -> tf.train.Checkpoint:
    """The tf.train.Checkpoint layout (an object graph) of ``state`` that older bnas-tf versions wrote."""
    variables = {key: v for key, v in state.items() if key[0] in "vm"}
    return tf.train.Checkpoint(alpha_optimizer=alpha_optimizer, **variables)


def write(prefix, state: dict):
    """One SaveV2 op for the whole ``state``: a TensorFlow checkpoint bundle at ``prefix``. (tf.train.Checkpoint
    walks an object graph and writes it too, which made its writes slower.)"""
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=list(state),
        shape_and_slices=[""] * len(state),
        tensors=[v.read_value() for v in state.values()],
    )


def read(prefix, state: dict, alpha_optimizer):
    """Load the bundle at ``prefix`` into ``state``'s variables (the older layout's too, see
    :func:`legacy_checkpoint`); raises ValueError when its variables are not ``state``'s."""
    reader = tf.train.load_checkpoint(prefix)
    saved = reader.get_variable_to_shape_map()
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in saved:
        legacy_checkpoint(state, alpha_optimizer).read(prefix).assert_existing_objects_matched()
        return
    state = {key: v for key, v in state.items() if key != EPOCHS or key in saved}  # older: no epoch count
    wrong = [key for key, v in state.items() if saved.get(key) != v.shape.as_list()]
    if wrong or len(saved) != len(state):
        raise ValueError(
            f"it holds {len(saved)} variables, this supernet has {len(state)} ({len(wrong)} missing or of "
            "another shape): it was saved for another space or bnas-tf version"
        )
    values = tf.raw_ops.RestoreV2(
        prefix=prefix,
        tensor_names=list(state),
        shape_and_slices=[""] * len(state),
        dtypes=[v.dtype for v in state.values()],
    )
    for variable, value in zip(state.values(), values):
        variable.assign(value)


def save(folder, tag: str, state: dict, record=None):
    """Write ``state`` as checkpoint ``tag``, then point ``latest.json`` at it: the pointer is the commit, so a
    crash before it leaves the previous checkpoint in force. ``record`` (JSON) is kept in the pointer. The
    previous checkpoint is kept too (see :func:`restore`), older ones are deleted."""
    os.makedirs(folder, exist_ok=True)
    name = f"ckpt-{tag}"
    write(os.path.join(folder, name), state)
    current = pointer(folder)
    previous = current if current and current["prefix"] != name else (current or {}).get("previous")
    previous = {"prefix": previous["prefix"], "tag": previous["tag"]} if previous else None
    atomic_write_json(
        os.path.join(folder, POINTER), {"prefix": name, "tag": tag, "record": record, "previous": previous}
    )
    keep = {name} | ({previous["prefix"]} if previous else set())
    for file in os.listdir(folder):  # older checkpoints, and any a crash left before its pointer was written
        if file.startswith("ckpt-") and file.split(".")[0] not in keep:
            os.unlink(os.path.join(folder, file))


def pointer(folder) -> dict | None:
    """The content of ``folder/latest.json`` (prefix, tag, record, previous), or None without one."""
    path = os.path.join(folder, POINTER)
    if not os.path.exists(path):
        return None
    state = read_json(
        path,
        what="supernet checkpoint pointer",
        recovery=(
            f"restore it from a backup, or start the search again with overwrite=True; deleting only {folder} "
            "would resume the search with untrained weights"
        ),
    )
    if not isinstance(state, dict) or not isinstance(state.get("prefix"), str) or "tag" not in state:
        raise ValueError(
            f"supernet checkpoint pointer {path} is not one bnas-tf wrote (no prefix/tag); restore it "
            "from a backup, or start the search again with overwrite=True"
        )
    return state


def restore(folder, state: dict, alpha_optimizer, tag: str | None = None) -> str | None:
    """Load the latest checkpoint in ``folder`` (or the one tagged ``tag``: the latest or the one before) into
    ``state``'s variables; returns its tag, or None when there is none."""
    current = pointer(folder)
    if current is None:
        if tag is not None:
            raise ValueError(
                f"no supernet checkpoint in {folder}, but the search's other supernet is at {tag}; "
                "restore the folder from a backup, or start again with overwrite=True"
            )
        return None
    if tag is not None and current["tag"] != tag:
        previous = current.get("previous")
        if not previous or previous["tag"] != tag:
            raise ValueError(
                f"the supernet checkpoint in {folder} is at {current['tag']}, the search's other "
                f"supernet at {tag}; restore the project from a backup, or start again with overwrite=True"
            )
        current = previous
    prefix = os.path.join(folder, current["prefix"])
    try:
        read(prefix, state, alpha_optimizer)
    except (tf.errors.OpError, ValueError, AssertionError) as error:  # NotFoundError, DataLossError, no .data file
        detail = f"{error}" if type(error) is ValueError else type(error).__name__
        raise ValueError(
            f"supernet checkpoint {prefix} cannot be read ({detail}); restore it from "
            "a backup, or start the search again with overwrite=True"
        ) from None
    return current["tag"]
