"""What a network costs and how Larq Compute Engine will run it, computed from the Keras model alone.

- :mod:`~bnas_tf.deploy.layer_walk`: the one walk over a model's layers that costing, checks and export share.
- :mod:`~bnas_tf.deploy.costs`: params, memory bits, binary/float MACs and FLOPs (SPEC P2 App. D, P3, P4).
- :mod:`~bnas_tf.deploy.convertibility`: which layers LCE converts faithfully, and why not.
- :mod:`~bnas_tf.deploy.lce_graph`: the layer graph LCE's converter sees (merged and folded layers).
- :mod:`~bnas_tf.deploy.lce_rules`: per layer, binary kernel, float op, folded or rejected.
- :mod:`~bnas_tf.deploy.lce_profile`: the whole model's LCE profile and .tflite size estimate.

None of these loads Larq Compute Engine; :mod:`bnas_tf.convert` does.
"""
