"""Each replica's share of a path-mode batch, worked out by hand (no strategy needed)."""

import numpy as np
import pytest

from bnas_tf.tuners.replicas import (
    check_batch,
    padded_replica_rows,
    replica_rows,
    trimmed_rows,
    without_small_batches,
)


def test_each_replica_takes_its_slice_of_every_paths_chunk():
    # 3 paths of 4 rows on 2 replicas: replica 0 the first 2 rows of each chunk, replica 1 the last 2
    assert replica_rows(12, 3, 2).tolist() == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]
    assert replica_rows(6, 1, 3).tolist() == [[0, 1], [2, 3], [4, 5]]  # mixed mode: one path
    # every row goes to exactly one replica
    assert sorted(replica_rows(24, 4, 3).ravel().tolist()) == list(range(24))


def test_a_chunk_that_does_not_split_is_refused_with_the_numbers():
    with pytest.raises(ValueError, match="10 rows in 2 path chunks of 5 rows .* 2 replicas: .* multiple of 2"):
        replica_rows(10, 2, 2)
    with pytest.raises(ValueError, match="batches of 15 rows.* 2 replicas .* multiple of 2, e.g. 16"):
        check_batch(15, 2, "train_data")
    with pytest.raises(ValueError, match="at least 2 rows"):
        check_batch(4, 4, "train_data")
    assert check_batch(16, 2, "train_data") == 16


def test_evaluation_pads_every_chunk_and_padding_never_counts():
    # 2 paths of 3 rows on 2 replicas: each chunk padded to 4, the padding at the end of replica 1's share
    index = padded_replica_rows(6, 2, 2)
    assert index.tolist() == [[0, 1, 3, 4], [2, -1, 5, -1]]
    assert sorted(i for i in index.ravel().tolist() if i >= 0) == list(range(6))
    assert padded_replica_rows(4, 1, 2).tolist() == [[0, 1], [2, 3]]  # no padding when it splits


def test_a_ragged_mixed_mode_batch_is_trimmed_to_a_multiple_of_the_replicas():
    assert [trimmed_rows(rows, 2) for rows in (8, 9, 3)] == [8, 8, 2]


def test_an_epochs_last_batch_too_small_for_the_replicas_is_left_out():
    import tensorflow as tf

    # 21 rows in batches of 8: 8, 8, 5 on 2 replicas (5 -> 4 rows, 2 each) are kept; 19 rows: the last 3 is not
    for rows, sizes in ((21, [8, 8, 5]), (19, [8, 8])):
        data = tf.data.Dataset.from_tensor_slices((np.zeros((rows, 2, 2, 1)), np.zeros(rows, np.int32))).batch(8)
        assert [int(y.shape[0]) for _, y in without_small_batches(data, 2)] == sizes
