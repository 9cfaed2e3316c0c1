"""Character LM: corpus windows, perplexity, structured pruning that is exact, int8 in TFLM."""

from __future__ import annotations

import numpy as np
import pytest
from vader_sample import load_sample

from tinykd.errors import TinyKDError
from tinykd_lab.tasks import char_lm
from tinykd_lab.tasks.transformer_layers import build_transformer

SMALL = dict(d_model=16, heads=4, head_dim=4, ffn_dim=24, layers=2)


def test_perplexity_golden_values():
    assert char_lm.perplexity(np.zeros((3, 5, 7)), np.zeros((3, 5), int)) == pytest.approx(7.0)
    logits = np.log(np.array([[1.0, 3.0]]))  # p = [1/4, 3/4]
    assert char_lm.perplexity(logits, np.array([1])) == pytest.approx(4 / 3)
    both = char_lm.perplexity(np.vstack([logits, logits]), np.array([0, 1]))
    assert both == pytest.approx(np.sqrt(4 * 4 / 3))  # geometric mean of 4 and 4/3


def test_windows_pair_each_character_with_the_next():
    x, y = char_lm._windows(list(range(7)), 3)
    np.testing.assert_array_equal(x, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(y, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(TinyKDError, match="shorter than one window"):
        char_lm._windows([1, 2], 3)


def test_corpus_from_real_sentences_is_split_by_sentence():
    corpus = char_lm.char_corpus(load_sample(), sequence_length=32, min_count=2)
    data = corpus.data
    assert data.x_train.shape[1:] == (32,) and data.x_train.dtype == np.int32
    np.testing.assert_array_equal(data.x_train[:, 1:], data.y_train[:, :-1])
    assert len(data.x_test) > 0 and len(data.x_val) > 0
    assert corpus.vocabulary.tokens[:2] == ("<pad>", "<unk>")
    assert data.x_train.max() < len(corpus.vocabulary)


def _teacher(seed=0):
    config = char_lm.lm_config(20, 8, **SMALL)
    return build_transformer(config, seed=seed), config


def test_pruning_that_keeps_everything_changes_nothing(rng):
    teacher, config = _teacher()
    x = rng.integers(0, 20, (4, 8)).astype(np.int32)
    plan = char_lm.PruningPlan(
        channels=tuple(range(16)), heads=((0, 1, 2, 3),) * 2, ffn=(tuple(range(24)),) * 2
    )
    student, _ = char_lm.prune(teacher, config, plan)
    np.testing.assert_allclose(
        student.predict(x, verbose=0), teacher.predict(x, verbose=0), atol=1e-5
    )


def test_pruning_dead_heads_and_channels_is_exact(rng):
    """Heads and ffn channels that contribute nothing can be cut without changing the output."""
    teacher, config = _teacher()
    dead_heads, dead_ffn = (1, 3), (0, 5, 6, 20)
    for layer in range(2):
        output = teacher.get_layer(f"block{layer}_attention_output")
        kernel, bias = output.get_weights()
        for head in dead_heads:
            kernel[head * 4 : (head + 1) * 4] = 0.0
        output.set_weights([kernel, bias])
        ffn = teacher.get_layer(f"block{layer}_ffn_output")
        kernel, bias = ffn.get_weights()
        kernel[list(dead_ffn)] = 0.0
        ffn.set_weights([kernel, bias])
    x = rng.integers(0, 20, (4, 8)).astype(np.int32)
    importance = char_lm.activation_importance(teacher, config, x)
    plan = char_lm.plan_pruning(importance, d_model=16, heads=4, ffn_dim=24)  # nothing cut yet
    plan = char_lm.PruningPlan(
        plan.channels,
        heads=((0, 2),) * 2,
        ffn=(tuple(i for i in range(24) if i not in dead_ffn),) * 2,
    )
    student, student_config = char_lm.prune(teacher, config, plan)
    assert (student_config.heads, student_config.ffn_dim) == (2, 20)
    assert student.count_params() < teacher.count_params()
    np.testing.assert_allclose(
        student.predict(x, verbose=0), teacher.predict(x, verbose=0), atol=1e-5
    )


def test_importance_ranks_and_plan_keeps_the_top():
    importance = char_lm.Importance(
        channels=np.array([0.1, 0.9, 0.5, 0.7]),
        heads=[np.array([3.0, 1.0, 2.0])],
        ffn=[np.array([0.0, 2.0, 1.0, 3.0, 0.5])],
    )
    plan = char_lm.plan_pruning(importance, d_model=2, heads=2, ffn_dim=3)
    assert plan == char_lm.PruningPlan(channels=(1, 3), heads=((0, 2),), ffn=((1, 2, 3),))
    with pytest.raises(TinyKDError, match="Cannot keep 5 of 4"):
        char_lm.plan_pruning(importance, d_model=5, heads=1, ffn_dim=1)


def test_value_free_heads_have_zero_importance(rng):
    teacher, config = _teacher()
    value = teacher.get_layer("block0_value")
    kernel, bias = value.get_weights()
    kernel[:, 4:8], bias[4:8] = 0.0, 0.0  # head 1 of layer 0 outputs zeros
    value.set_weights([kernel, bias])
    importance = char_lm.activation_importance(teacher, config, rng.integers(0, 20, (4, 8)))
    assert importance.heads[0][1] == 0.0 and np.all(np.delete(importance.heads[0], 1) > 0)


@pytest.mark.slow
def test_prune_and_distill_end_to_end_with_int8_perplexity_in_tflm():
    # Whole batches only: a last, smaller batch would trace every train step twice.
    corpus = char_lm.char_corpus(
        load_sample(), sequence_length=32, min_count=2, max_train_windows=256
    )
    assert len(corpus.data.x_train) == 256
    result = char_lm.compare(
        corpus,
        teacher_epochs=1,
        student_epochs=1,
        batch_size=32,
        teacher_shape=SMALL,
        pruned_shape=dict(d_model=8, heads=2, ffn_dim=8),
        int8_windows=20,
        ablation=False,
    )
    assert result.student_params < result.teacher_params / 2
    assert result.lower_is_better and result.metric == "perplexity"
    for value in (result.teacher, result.scratch, result.distilled, result.int8_distilled):
        assert 1.0 < value < 2 * len(corpus.vocabulary)
    # int8 in TFLM stays within 5 % of the float student's perplexity on the same windows.
    assert result.float_on_int8_inputs is not None
    assert result.int8_distilled == pytest.approx(result.float_on_int8_inputs, rel=0.05)
    assert f"(float on the same: {result.float_on_int8_inputs:.3f})" in result.notes[-1]
    assert result.arena_bytes > 0
