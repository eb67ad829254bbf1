"""One worker of a ChildParent search on a two-process MultiWorkerMirroredStrategy; prints its result as JSON.

``python worker_search.py TF_CONFIG DIRECTORY TIMEOUT_SECONDS``: TF_CONFIG (JSON) names this worker, the search
runs in DIRECTORY/p4 (the chief's; the other worker's is a temporary copy), collectives time out after
TIMEOUT_SECONDS when a worker stops answering.
"""

import json
import os
import sys

os.environ["TF_CONFIG"] = sys.argv[1]

import tensorflow as tf  # noqa: E402

options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=float(sys.argv[3]))
strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)

from bnas_tf import data  # noqa: E402
from bnas_tf.space.supernet import CellSpace  # noqa: E402
from bnas_tf.tuners import ChildParent  # noqa: E402

SPACE = CellSpace(op_set=["conv_3x3", "max_pool_3x3", "identity"], cells=2, channels=8, nodes=1, reduction_cells=[1])

tuner = ChildParent(
    SPACE,
    directory=sys.argv[2],
    project_name="p4",
    repetitions=1,
    seed=5,
    distribution_strategy=strategy,
    sync_batch_norm=True,
)
bundle = data.load("digits", batch_size=32, search_split=True, max_examples=600)
result = {"chief": tuner.is_chief, "project_dir": tuner.project_dir, "replicas": strategy.num_replicas_in_sync}
try:
    tuner.search(
        bundle.search_weights,
        bundle.search_validation,
        architecture_data=bundle.search_architecture,
        steps_per_epoch=4,
        verbose=0,
    )
except RuntimeError as error:
    print(json.dumps({**result, "stopped": str(error)}))
    sys.exit(3)
scores = [trial.score for _, trial in sorted(tuner.oracle.trials.items())]
print(json.dumps({**result, "genotype": tuner.best_genotype().to_dict(), "scores": scores}))
