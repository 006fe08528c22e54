"""Environment for every test run, notebooks included (kernels inherit it):
TensorFlow's native logging off, so stored and fresh outputs compare cleanly."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")
