"""Test-wide settings.

* Keras runs on the PyTorch backend (no TensorFlow needed).
* One intra-op thread: the tests use tiny tensors, for which OpenMP's barriers cost more
  than they save (and stall badly when the cores are shared). Benchmarks set their own.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch

torch.set_num_threads(1)
