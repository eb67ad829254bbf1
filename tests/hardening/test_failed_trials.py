"""Failed trials: a diverged group is FAILED and rolled back, a raising one retried; failures stay out of the means.

The training data is a generator that the test can poison (NaN images) or
make raise for chosen groups, so one search sees a healthy group, a
diverging one and a crashing one. Space: 2 ops and Child-Parent's sampling
(every op in each repetition), so one pruning round of two groups of 2 paths.
"""

import numpy as np
import pytest
import tensorflow as tf

from bnas_tf import data
from bnas_tf.space.supernet import CellSpace
from bnas_tf.tuners import ChildParent
from bnas_tf.tuners import keras_tuner_internals as internals

SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3"], cells=2, channels=8, nodes=1, reduction_cells=[1])


class Faults:
    """What the training data does for the group being trained: "nan", "raise" or nothing."""

    def __init__(self):
        self.plan, self.group, self.raised = {}, None, 0

    def dataset(self, x, y):
        def batches():
            fault = self.plan.get(self.group)
            if fault == "raise" and self.raised == 0:
                self.raised += 1
                raise OSError("the data server went away")
            for start in range(0, len(x), 32):
                images = x[start : start + 32]
                yield (np.full_like(images, np.nan) if fault == "nan" else images), y[start : start + 32]

        return tf.data.Dataset.from_generator(
            batches,
            output_signature=(tf.TensorSpec((None,) + x.shape[1:], tf.float32), tf.TensorSpec((None,), tf.int32)),
        )


def _tuner(tmp_path, faults, **kwargs):
    class Observed(ChildParent):
        def _run_group(self, group, *args):
            faults.group = group[0].hyperparameters.values["group"]
            return super()._run_group(group, *args)

    settings = dict(repetitions=2, seed=2, num_classes=10, directory=str(tmp_path), project_name="faults")
    settings.update(kwargs)
    return Observed(SPACE, **settings)


@pytest.fixture(scope="module")
def digits():
    x, y = data.digits_arrays(16)
    return x[:192], y[:192], tf.data.Dataset.from_tensor_slices((x[1600:], y[1600:])).batch(100)


def _statuses(tuner):
    return {tid: (t.hyperparameters.values["group"], t.status) for tid, t in sorted(tuner.oracle.trials.items())}


def test_diverged_group_fails_rolls_back_and_stays_out_of_the_means(tmp_path, digits):
    x, y, validation = digits
    faults = Faults()
    faults.plan = {"r0t1": "nan"}
    tuner = _tuner(tmp_path, faults)
    tuner.search(faults.dataset(x, y), validation, steps_per_epoch=2, verbose=0)
    statuses = _statuses(tuner)
    assert [s for g, s in statuses.values() if g == "r0t1"] == ["FAILED", "FAILED"]
    assert [s for g, s in statuses.values() if g == "r0t0"] == ["COMPLETED", "COMPLETED"]
    failed = [t for t in tuner.oracle.trials.values() if t.status == "FAILED"]
    assert all("NaN/inf" in t.message for t in failed)
    # the NaN weights of the diverged group were not kept: the supernet is finite and at the last good commit
    assert all(np.all(np.isfinite(w.numpy())) for w in tuner.child.supernet.all_variables())
    assert tuner.child.pointer(tuner._folder("supernet"))["tag"] == max(
        tid for tid, (g, s) in statuses.items() if s == "COMPLETED"
    )
    # each op's mean is its measurement in the healthy group only (the failed samples count for nothing)
    assert tuner.oracle.phase == "done"
    edges = tuner.search_log()[0]["edges"]
    healthy = {tid: t for tid, t in tuner.oracle.trials.items() if t.status == "COMPLETED"}
    for edge_name, record in edges.items():
        expected = {t.hyperparameters.values[edge_name]: t.score for t in healthy.values()}
        assert record["mean"] == pytest.approx(expected), edge_name


def test_consecutive_failed_groups_stop_the_search(tmp_path, digits):
    x, y, validation = digits
    faults = Faults()
    faults.plan = {"r0t0": "nan", "r0t1": "nan"}
    tuner = _tuner(tmp_path, faults, max_consecutive_failed_trials=2)
    with pytest.raises(RuntimeError, match="2 consecutive groups of sampled paths failed"):
        tuner.search(faults.dataset(x, y), validation, steps_per_epoch=2, verbose=0)
    # groups, not paths, are counted: with 2 paths per group, two whole groups failed before the stop
    assert [s for _, s in _statuses(tuner).values()] == ["FAILED"] * 4
    assert tuner.oracle.round == 0 and tuner.oracle.log == []  # nothing pruned on failed measurements


def test_raising_group_is_retried_through_keras_tuner(tmp_path, digits):
    x, y, validation = digits
    faults = Faults()
    faults.plan = {"r0t0": "raise"}
    tuner = _tuner(tmp_path, faults, max_retries_per_trial=1)
    tuner.search(faults.dataset(x, y), validation, steps_per_epoch=2, verbose=0)
    statuses = _statuses(tuner)
    assert faults.raised == 1
    assert [s for _, s in statuses.values()] == ["COMPLETED"] * 4  # the first group ran again and finished
    retried = [tid for tid, (g, _) in statuses.items() if g == "r0t0"]
    assert all(internals.run_times(tuner.oracle, tid) == 2 for tid in retried)
    assert len(internals.ended_trial_ids(tuner.oracle)) == 4 and tuner.oracle.phase == "done"
