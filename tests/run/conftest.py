"""tests/run: the command line, recipes and reports (toy sizes live in toysize.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
