"""A tiny transformer sentiment classifier distilled from a larger one (VADER's rated sentences).

Data: the 23,703 human-rated sentences (:mod:`tinykd_lab.data.text`), near-neutral ones
dropped, words lower-cased into a vocabulary fitted on the training split. Distillation
follows TinyBERT / MiniLM: soft logits (``kd``), each student layer's attention
distributions against its mapped teacher layer (``attention_map``, head-mean maps when
head counts differ) and its hidden states through a learned projection
(``hint`` with a learned projection). Layer mapping is TinyBERT's uniform one: student layer m
(1-based) learns from teacher layer m·L_teacher/L_student, so the last layers meet.

There is no padding mask: sentences are right-padded with id 0 and the model learns to
ignore that token (a mask would add operators and changes nothing TFLM cannot run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinykd.progress import Progress
from tinykd.recipe import Distillation, LossEntry, Recipe
from tinykd.training import SplitData, float_accuracy, train
from tinykd_lab.data.text import TextSplits, Vocabulary, encode_words, words
from tinykd_lab.tasks.comparison import TaskComparison
from tinykd_lab.tasks.int8_export import export_int8, tflm_predict
from tinykd_lab.tasks.transformer_layers import TransformerConfig, build_transformer

TEACHER = dict(d_model=128, heads=4, head_dim=32, ffn_dim=256, layers=2, dropout=0.1)
STUDENT = dict(d_model=32, heads=2, head_dim=16, ffn_dim=64, layers=1, dropout=0.1)


@dataclass
class EncodedText:
    data: SplitData  # (N, T) int32 word ids and 0/1 labels
    vocabulary: Vocabulary


def encode_sentiment(
    splits: TextSplits, vocabulary_size: int = 5000, sequence_length: int = 40, min_count: int = 2
) -> EncodedText:
    """Word ids for every split, with a vocabulary fitted on the training sentences only."""
    vocabulary = Vocabulary.fit(
        (words(text) for text in splits.texts_train), vocabulary_size, min_count
    )

    def encode(texts):
        return encode_words(texts, vocabulary, sequence_length)

    data = SplitData(
        encode(splits.texts_train),
        splits.y_train,
        encode(splits.texts_val),
        splits.y_val,
        encode(splits.texts_test),
        splits.y_test,
        splits.class_names,
        "vader_sentiment",
        splits.source,
    )
    return EncodedText(data, vocabulary)


def classifier_config(
    vocabulary_size: int, sequence_length: int, role: str, **changes
) -> TransformerConfig:
    """The teacher's or the student's shape (``role``: "teacher" or "student")."""
    shape = {"teacher": TEACHER, "student": STUDENT}[role]
    return TransformerConfig(
        vocab_size=vocabulary_size,
        sequence_length=sequence_length,
        num_outputs=2,
        pooled=True,
        name=f"text_{role}",
        **{**shape, **changes},
    )


def mapped_teacher_layer(student_layer: int, student_layers: int, teacher_layers: int) -> int:
    """TinyBERT's uniform mapping, 0-based: the last student layer meets the last teacher layer."""
    return (student_layer + 1) * teacher_layers // student_layers - 1


def distillation_losses(
    teacher: TransformerConfig,
    student: TransformerConfig,
    *,
    temperature: float = 2.0,
    attention_weight: float = 1.0,
    hidden_weight: float = 1.0,
) -> list[dict]:
    """``kd`` on logits plus, per student layer, attention maps and projected hidden states."""
    losses = [{"name": "kd", "temperature": temperature}]
    for layer in range(student.layers):
        source = mapped_teacher_layer(layer, student.layers, teacher.layers)
        if attention_weight:
            losses.append(
                {
                    "name": "attention_map",
                    "teacher_tap": f"block{source}_attention",
                    "student_tap": f"block{layer}_attention",
                    "weight": attention_weight,
                }
            )
        if hidden_weight:
            losses.append(
                {
                    "name": "hint",  # TinyBERT's hidden-state loss: MSE after a dense map
                    "teacher_tap": f"block{source}",
                    "student_tap": f"block{layer}",
                    "projection": "auto",
                    "regressor": "linear",  # W_h: hidden states are signed
                    "weight": hidden_weight,
                }
            )
    return losses


def int8_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the int8 model in the TFLM interpreter (one sentence per invoke)."""
    return float(np.mean(tflm_predict(tflite, x).argmax(axis=-1) == y))


def compare(
    splits: TextSplits,
    *,
    teacher_epochs: int = 3,
    student_epochs: int = 6,
    batch_size: int = 64,
    teacher_learning_rate: float = 1e-3,
    student_learning_rate: float = 2e-3,
    vocabulary_size: int = 5000,
    sequence_length: int = 40,
    seed: int = 0,
    export: bool = True,
    ablation: bool = True,
    progress: Progress | None = None,
) -> TaskComparison:
    """Teacher, scratch student and distilled student: test accuracy, int8 accuracy in TFLM."""
    progress = progress or Progress(quiet=True)
    encoded = encode_sentiment(splits, vocabulary_size, sequence_length)
    data = encoded.data
    teacher_config = classifier_config(len(encoded.vocabulary), sequence_length, "teacher")
    student_config = classifier_config(len(encoded.vocabulary), sequence_length, "student")

    def fit(config, epochs, learning_rate, label="", teacher=None, losses=(), cache=True):
        model = build_transformer(config, seed=seed)
        progress.say(f"text: training {config.name} {label}")
        recipe = Recipe(epochs, batch_size, learning_rate, seed, cache_teacher=cache)
        entries = [LossEntry.from_table(table) for table in losses]
        distillation = Distillation(teacher, entries) if losses else None
        callbacks = [progress.epoch_callback(config.name)]
        train(model, data, recipe, distillation, callbacks=callbacks)
        return model, float_accuracy(model, data.x_test, data.y_test)

    teacher, teacher_accuracy = fit(teacher_config, teacher_epochs, teacher_learning_rate)
    _, scratch_accuracy = fit(student_config, student_epochs, student_learning_rate)
    losses = distillation_losses(teacher_config, student_config)
    distilled, distilled_accuracy = fit(
        student_config,
        student_epochs,
        student_learning_rate,
        teacher=teacher,
        losses=losses,
        cache=False,  # attention maps of every sentence would take ~0.6 GB
        label="(logits + attention + hidden states)",
    )
    result = TaskComparison(
        task="sentiment (VADER sentences)",
        metric="accuracy %",
        lower_is_better=False,
        teacher_model=f"transformer {teacher_config.layers}×{teacher_config.d_model}",
        student_model=f"transformer {student_config.layers}×{student_config.d_model}",
        teacher_params=teacher.count_params(),
        student_params=distilled.count_params(),
        teacher=100 * teacher_accuracy,
        scratch=100 * scratch_accuracy,
        distilled=100 * distilled_accuracy,
        notes=[
            *splits.notes,
            f"{len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test "
            f"sentences; {len(encoded.vocabulary)} word ids, {sequence_length} words per "
            f"sentence; teacher {teacher_epochs} epochs, students {student_epochs} epochs.",
        ],
    )
    if ablation:
        kd_only = distillation_losses(
            teacher_config, student_config, attention_weight=0, hidden_weight=0
        )
        _, accuracy = fit(
            student_config,
            student_epochs,
            student_learning_rate,
            teacher=teacher,
            losses=kd_only,
            label="(logits only)",
        )
        result.extra["distilled, logits only"] = 100 * accuracy
    if export:
        exported = export_int8(distilled, data.x_train)
        accuracy = int8_accuracy(exported.tflite, data.x_test, data.y_test)
        result.record_int8(exported, 100 * accuracy)
    return result
