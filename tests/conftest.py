"""Test-wide settings: Keras runs on the PyTorch backend (no TensorFlow needed)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
