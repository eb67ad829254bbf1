"""Face verification on searched binary networks (SPEC P1 §4.4, Table 5).

- :mod:`~bnas_tf.face.metrics`: 10-fold verification accuracy, ROC + AUC, TAR@FAR (pure numpy).
- :mod:`~bnas_tf.face.pairs`: LFW ``pairs.txt`` and simple ``path1 path2 label`` pair lists.
- :mod:`~bnas_tf.face.head`: float embedding head (Dense + BN) and the ArcFace margin layer.
- :mod:`~bnas_tf.face.tuners`: the weight-sharing tuners scored by verification accuracy.
- :mod:`~bnas_tf.pipeline.face`: the ``bnas_face`` recipe's run (search, margin retraining, verify, convert).

Only ``metrics`` and ``pairs`` are imported here, so they work without TensorFlow loaded.
"""

from bnas_tf.face import metrics, pairs  # noqa: F401
