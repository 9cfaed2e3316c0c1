"""tinykd's lab: experiments and test tooling beside the product, never imported by it.

The product (``tinykd/``) is what ``tinykd run``, ``demo``, ``render``, ``flash`` and
``bench`` reach: classification distillation, compression, export, firmware and the
measuring harness. The lab holds what only the benchmark scripts (``bench/``) and the
tests use:

- ``tasks/``: distillation beyond classification (detection and segmentation on composed
  scenes, GAN compression, a transformer text classifier, a pruned character LM) and
  their data (``data/``: composed scenes, VADER sentences);
- ``parity.py``: TFLM against LiteRT on the same int8 inputs;
- ``faults.py``, ``fault_scenarios.py``: a fault-injecting serial proxy and the scenarios
  the harness must survive or refuse.

The lab imports the product; nothing under ``tinykd/`` imports the lab (a test checks
it), and the package is not installed with tinykd (pyproject.toml), so an experiment
can never become a hidden dependency of a run.
"""
