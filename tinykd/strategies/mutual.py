"""Deep mutual learning: K peers trained together, each also imitating the others.

Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning" (CVPR 2018). Peer i minimises

    L_i = CE(y, z_i) + mutual_weight · 1/(K−1) · Σ_{j≠i} T² · KL(p_j^T ‖ p_i^T)

where the other peers' distributions p_j are targets (no gradient flows into them through
L_i, as in the paper's alternating updates). All peers step on the same batch; since L_i
depends only on peer i's weights, summing the L_i and taking one optimizer step is the
same as K separate steps. Peers may differ in architecture and width; peer 1 is the
configured student and is the one exported. A configured teacher adds its logit losses to
every peer (``hard_label_weight`` then comes from the distillation settings).
"""

from __future__ import annotations

from tinykd._keras import keras, tf
from tinykd.distill.losses import Batch, build_loss
from tinykd.models import ensemble_model
from tinykd.strategies.base import (
    STRATEGIES,
    JointTrainer,
    Strategy,
    StrategyResult,
    fit_joint,
    mean_kl_to_targets,
    require,
)
from tinykd.training import ModelSpec

SEED_STEP = 1000


class MutualTrainer(JointTrainer):
    """One train_step for all peers; metrics: each peer's accuracy and the ensemble's."""

    def __init__(self, peers, temperature: float, mutual_weight: float, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.peers = list(peers)
        self.mutual_weight = float(mutual_weight)
        self.mimicry = build_loss("kd", temperature=temperature)
        self.peer_accuracies = [
            keras.metrics.SparseCategoricalAccuracy(name=f"peer{i + 1}_accuracy")
            for i in range(len(self.peers))
        ]
        self.ensemble_accuracy = keras.metrics.SparseCategoricalAccuracy(name="ensemble_accuracy")

    @property
    def metrics(self):
        return [*super().metrics, *self.peer_accuracies, self.ensemble_accuracy]

    def call(self, inputs, training=False):
        return self.peers[0](inputs, training=training)

    def train_step(self, data):
        inputs, labels, teacher_logits = self.unpack(data)
        batch = Batch(inputs=inputs, labels=labels)
        with tf.GradientTape() as tape:
            logits = [peer(inputs, training=True) for peer in self.peers]
            total = 0.0
            for index, peer_logits in enumerate(logits):
                others = logits[:index] + logits[index + 1 :]
                total += self.supervised_loss(inputs, labels, peer_logits, teacher_logits)
                total += self.mutual_weight * mean_kl_to_targets(
                    self.mimicry, others, peer_logits, batch
                )
        variables = [v for peer in self.peers for v in peer.trainable_variables]
        self.apply_gradients(tape, total, variables)
        return self._report(total, labels, logits)

    def test_step(self, data):
        inputs, labels = data[0], data[1]
        logits = [peer(inputs, training=False) for peer in self.peers]
        return self._report(self.hard_loss(labels, logits[0]), labels, logits)

    def _report(self, loss, labels, logits):
        ensemble = tf.add_n(logits) / len(logits)
        others = [*zip(self.peer_accuracies, logits), (self.ensemble_accuracy, ensemble)]
        return self.report(loss, labels, logits[0], others)


@STRATEGIES.register("mutual")
class MutualLearning(Strategy):
    name = "mutual"

    def __init__(
        self,
        peers: int = 2,
        models: list = (),
        widths: list = (),
        temperature: float = 1.0,
        mutual_weight: float = 1.0,
    ):
        """``models``/``widths``: architecture and width of peers 2…K (default: the student's)."""
        require(peers >= 2, f"mutual: needs at least 2 peers, not {peers}.")
        for name, values in (("models", models), ("widths", widths)):
            require(
                len(values) <= peers - 1,
                f"mutual: {name} lists peers 2…{peers} ({peers - 1} entries at most), "
                f"got {len(values)}.",
            )
        require(temperature > 0, f"mutual: temperature must be positive, not {temperature}.")
        self.peers = int(peers)
        self.models = list(models)
        self.widths = [float(w) for w in widths]
        self.temperature = float(temperature)
        self.mutual_weight = float(mutual_weight)

    def peer_specs(self, student: ModelSpec) -> list[ModelSpec]:
        specs = [student]
        for index in range(self.peers - 1):
            model = self.models[index] if index < len(self.models) else student.model
            width = self.widths[index] if index < len(self.widths) else student.width
            depth = student.depth if model == student.model else None
            specs.append(ModelSpec(model, width, depth))
        return specs

    def train(self, student, data, recipe, supervision=None, callbacks=()) -> StrategyResult:
        peers = [
            spec.build(data, recipe.seed + index * SEED_STEP)
            for index, spec in enumerate(self.peer_specs(student))
        ]
        keras.utils.set_random_seed(recipe.seed)
        trainer = MutualTrainer(
            peers, self.temperature, self.mutual_weight, self.name, supervision, peers[0]
        )
        seconds = fit_joint(trainer, data, recipe, callbacks)
        members = {
            f"peer {index + 1} ({peer.name} ×{spec.width:g})": peer
            for index, (peer, spec) in enumerate(zip(peers, self.peer_specs(student)))
        }
        return StrategyResult(
            model=peers[0],
            members=members,
            seconds=seconds,
            epochs=recipe.epochs,
            ensemble=ensemble_model(peers, name="mutual_ensemble"),
        )
