"""The process-wide Grappler switch the supernet's graphs run under.

Grappler makes a supernet's first call of a large training graph much slower and its steps no faster, and the
shared ``_noinline`` op functions (:mod:`bnas_tf.space.shared_ops`) need it off, or every call site optimises them
again (STACK_NOTES "Measured by the project"). TensorFlow's setting is global and read at every call, so it is
switched off while any trainer runs, counted across threads, and put back when the last one ends.
"""

from __future__ import annotations

import contextlib
import threading

import tensorflow as tf

_optimisation_lock = threading.Lock()
_optimisation_users = [0, None]  # runs inside without_graph_optimisation, the options they replaced


@contextlib.contextmanager
def without_graph_optimisation():
    """Run the supernet's functions without Grappler. On a large training graph Grappler took most of the first
    call and the steps ran no faster. The setting is TensorFlow's global one and is read at every call (a
    function called under other options is instantiated again), so it is on while any trainer runs
    (reference-counted: threaded chief/worker tests) and put back afterwards."""
    with _optimisation_lock:
        if _optimisation_users[0] == 0:
            _optimisation_users[1] = tf.config.optimizer.get_experimental_options()
            tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        _optimisation_users[0] += 1
    try:
        yield
    finally:
        with _optimisation_lock:
            _optimisation_users[0] -= 1
            if _optimisation_users[0] == 0:
                tf.config.optimizer.set_experimental_options(
                    {"disable_meta_optimizer": False, **_optimisation_users[1]}
                )
