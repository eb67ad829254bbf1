import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)
    yield
    tf.keras.backend.clear_session()


@pytest.fixture(scope="session")
def digits():
    """Embedded digits as (x in [-1, 1], 16x16x1; y) numpy arrays."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.images.astype("float32")[..., None] / 16.0
    x = tf.image.resize(x, (16, 16)).numpy() * 2.0 - 1.0
    return x.astype("float32"), data.target.astype("int32")


@pytest.fixture
def loopback_workers():
    """``loopback_workers(n)``: n free ``127.0.0.1:port`` addresses, a TF_CONFIG cluster's worker list."""
    import socket

    def addresses(count):
        sockets = [socket.socket() for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in sockets]
        for s in sockets:
            s.close()
        return [f"127.0.0.1:{port}" for port in ports]

    return addresses
