"""The search spaces: binarization, ops, genotypes, the networks built from them and the weight-sharing supernet.

- :mod:`~bnas_tf.space.quantizers`: binarization schemes as Larq quantizers (SPEC P1 §3.2, P3 Eq. 1).
- :mod:`~bnas_tf.space.ops`: the op registry and op sets (DARTS binary ops, P2's binary-friendly ops).
- :mod:`~bnas_tf.space.genotype`: cell and width genotypes with exact JSON round-trip.
- :mod:`~bnas_tf.space.backbones`: VGG-small / ResNet-18 base widths for width genes (P3).
- :mod:`~bnas_tf.space.networks`: the evaluation network of a genotype.
- :mod:`~bnas_tf.space.supernet`: every op of every edge in one Keras model (path and mixed modes).
- :mod:`~bnas_tf.space.shared_ops`: one traced function per op signature inside supernet graphs.
- :mod:`~bnas_tf.space.published`: the papers' published cells.
- :mod:`~bnas_tf.space.losses`: amplitude, Child-Parent kernel and diversity losses.
- :mod:`~bnas_tf.space.plots`: drawings of genotypes.
"""

from bnas_tf.stack import check_stack

check_stack()
