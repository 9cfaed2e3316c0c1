"""Born-again networks: self-distillation over generations of the same architecture.

Furlanello et al., "Born-Again Neural Networks" (ICML 2018). Generation 1 is trained
normally (from the labels, or from the configured teacher if there is one); generation
k > 1 is a freshly initialised copy of the same architecture trained with
``hard_label_weight``·CE + ``kd_weight``·KD(teacher_k, student), where teacher_k is
generation k − 1, or with ``ensemble = true`` the mean logits of generations 1 … k − 1
(the paper's BAN ensemble). No outside teacher is needed.

``temperature`` defaults to 1: the paper's students learn from the previous generation's
plain softmax output (its objective has no temperature), and tinykd's own sweep on
Fashion-MNIST (``bench/kd_sweep.py``, quoted in the README's distillation section) shows
a higher T hurting a capacity-limited student. It
differs on purpose from the ``kd`` loss's general default (T = 4); ``temperature = 4``
gives tinykd's earlier born-again setting.
"""

from __future__ import annotations

import time
from dataclasses import replace

from tinykd.models import ensemble_model
from tinykd.recipe import Distillation, LossEntry
from tinykd.strategies.base import (
    STRATEGIES,
    Strategy,
    StrategyResult,
    require,
)
from tinykd.training import train

# Generation k trains with seed + k·SEED_STEP, so generations start from different weights.
SEED_STEP = 1000


@STRATEGIES.register("born_again")
class BornAgain(Strategy):
    name = "born_again"

    def __init__(
        self,
        generations: int = 3,
        temperature: float = 1.0,
        kd_weight: float = 1.0,
        hard_label_weight: float = 1.0,
        ensemble: bool = False,
    ):
        require(generations >= 1, f"born_again: generations must be at least 1, not {generations}.")
        require(temperature > 0, f"born_again: temperature must be positive, not {temperature}.")
        self.generations = int(generations)
        self.temperature = float(temperature)
        self.kd_weight = float(kd_weight)
        self.hard_label_weight = float(hard_label_weight)
        self.ensemble = bool(ensemble)

    def distillation(self, previous) -> Distillation:
        """How generation k > 1 learns from ``previous`` (generation k − 1 or the ensemble)."""
        kd = LossEntry("kd", {"temperature": self.temperature, "weight": self.kd_weight})
        return Distillation(previous, (kd,), self.hard_label_weight)

    def train(self, student, data, recipe, supervision=None, callbacks=()) -> StrategyResult:
        started = time.monotonic()
        generations = []
        for index in range(self.generations):
            seed = recipe.seed + index * SEED_STEP
            model = student.build(data, seed)
            if index == 0:
                distillation = supervision
            else:
                previous = ensemble_model(generations) if self.ensemble else generations[-1]
                distillation = self.distillation(previous)
            train(model, data, replace(recipe, seed=seed), distillation, callbacks=callbacks)
            generations.append(model)
        members = {f"generation {i + 1}": model for i, model in enumerate(generations)}
        return StrategyResult(
            model=generations[-1],
            members=members,
            seconds=time.monotonic() - started,
            epochs=recipe.epochs,
            ensemble=ensemble_model(generations, name="born_again_ensemble"),
        )
