"""VADER text data, attention-map and hidden-state losses, and the tiny transformer classifier."""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pytest
from vader_sample import load_sample

from tinykd.errors import TinyKDError
from tinykd_lab.data import text
from tinykd_lab.data.text import (
    RatedSentence,
    Vocabulary,
    binary_sentiment,
    encode_words,
    load_vader_sentences,
    words,
)


def _targz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def fake_sdist(sentences: list[RatedSentence]) -> bytes:
    """The sdist's layout (nested tarball, CRLF tab-separated files) holding ``sentences``."""
    files = {}
    for corpus in text.VADER_CORPORA:
        lines = [
            f"{s.sentence_id}\t{s.rating!r}\t{s.text}" for s in sentences if s.corpus == corpus
        ]
        files[f"hutto_ICWSM_2014/{corpus}_GroundTruth.txt"] = "\r\n".join(lines).encode()
    return _targz({text.VADER_INNER_ARCHIVE: _targz(files)})


def test_loader_reads_the_sdist_layout(tmp_path):
    sample = load_sample()
    path = tmp_path / text.VADER_SDIST
    path.write_bytes(fake_sdist(sample))
    assert load_vader_sentences(path, verify=False) == sample
    with pytest.raises(TinyKDError, match="SHA-256"):
        load_vader_sentences(path)  # not the real sdist


def test_missing_sdist_names_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYKD_DATA_DIR", str(tmp_path))
    with pytest.raises(TinyKDError, match=r"scripts/setup\.sh.*pip download --no-binary"):
        load_vader_sentences()


def test_malformed_line_is_an_error_not_skipped():
    with pytest.raises(TinyKDError, match="tweets_GroundTruth.txt line 2: 2 tab-separated"):
        text.parse_ground_truth("1\t0.5\tfine\r\n2\tbroken", "tweets")


@pytest.mark.skipif(
    not (text.data_dir() / text.VADER_SDIST).exists() and not os.environ.get("TINYKD_TEST_VADER"),
    reason="vaderSentiment sdist not fetched (bash scripts/setup.sh); TINYKD_TEST_VADER=1 forces",
)
def test_real_sdist_has_every_rated_sentence():
    sentences = load_vader_sentences()
    assert len(sentences) == text.VADER_SENTENCE_COUNT == 23_703
    counts = {c: sum(s.corpus == c for s in sentences) for c in text.VADER_CORPORA}
    assert counts == {  # the counts the dataset's README gives
        "tweets": 4200,
        "nytEditorialSnippets": 5190,
        "movieReviewSnippets": 10605,
        "amazonReviewSnippets": 3708,
    }
    assert all(-4 <= s.rating <= 4 for s in sentences)
    sample = load_sample()
    assert set(sample) <= set(sentences)  # the committed slice is real data, unchanged


def test_binarization_drops_near_neutral_and_says_so():
    ratings = [-2.0, -0.4, 0.0, 0.49, 0.5, 3.0, -0.5]
    sentences = [RatedSentence("tweets", str(i), r, f"s{i}") for i, r in enumerate(ratings)]
    splits = binary_sentiment(sentences, validation_fraction=0.0, test_fraction=0.25, seed=0)
    kept = dict(zip(splits.texts_train + splits.texts_test, [*splits.y_train, *splits.y_test]))
    assert kept == {"s0": 0, "s4": 1, "s5": 1, "s6": 0}
    assert "3 near-neutral" in splits.notes[0]


def test_words_vocabulary_and_encoding():
    assert words("I LOVE it!!! :) Don't.") == ["i", "love", "it", "!", "!", "!", ":)", "don't"]
    vocabulary = Vocabulary.fit([["b", "a", "b", "c"], ["a", "b"]], max_size=4)
    assert vocabulary.tokens == ("<pad>", "<unk>", "b", "a")  # by count, then alphabetically
    encoded = encode_words(["a b c", "b b b b b"], vocabulary, length=4)
    np.testing.assert_array_equal(encoded, [[3, 2, 1, 0], [2, 2, 2, 2]])


# Losses.


def _loss(name, teacher, student, **params):
    from tinykd.distill import build_loss
    from tinykd.distill.losses import Batch

    loss = build_loss(name, teacher_tap="t", student_tap="s", **params)
    loss.build_for({"t": teacher.shape}, {"s": student.shape})
    return loss, float(loss.compute_loss({"t": teacher}, {"s": student}, Batch(None, None)))


def test_attention_map_loss_is_the_kl_of_attention_rows():
    teacher = np.array([[[[0.5, 0.5], [1.0, 0.0]]]], np.float32)  # (1 batch, 1 head, 2, 2)
    student = np.array([[[[0.25, 0.75], [0.5, 0.5]]]], np.float32)
    row_1 = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    row_2 = 1.0 * np.log(1.0 / 0.5)
    _, value = _loss("attention_map", teacher, student)
    assert value == pytest.approx((row_1 + row_2) / 2, rel=1e-5)


def test_attention_map_loss_averages_heads_when_counts_differ():
    teacher = np.array([[[[1.0, 0.0]], [[0.0, 1.0]]]], np.float32)  # 2 heads → mean [0.5, 0.5]
    student = np.array([[[[0.5, 0.5]]]], np.float32)
    _, value = _loss("attention_map", teacher, student)
    assert value == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(TinyKDError, match=r"teacher 't': \(1, 2, 3\)"):
        _loss("attention_map", np.zeros((1, 2, 3), np.float32), student)


def test_hidden_state_loss_is_mse_after_a_dense_projection():
    """TinyBERT's hidden-state loss, as the text task configures it: ``hint``, projection auto,
    a linear regressor (hidden states are signed: no ReLU)."""
    teacher = np.array([[[1.0, 2.0, 3.0]]], np.float32)  # (batch, T, 3)
    student = np.array([[[1.0, -1.0]]], np.float32)  # (batch, T, 2)
    loss, _ = _loss("hint", teacher, student, projection="auto", regressor="linear", weight=1.0)
    kernel = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]], np.float32)
    loss.alignment.projector.set_weights([kernel, np.array([0.0, 0.0, 1.0], np.float32)])
    from tinykd.distill.losses import Batch

    projected = student[0, 0] @ kernel + [0, 0, 1]  # [1, -1, 3]
    expected = np.mean((projected - teacher[0, 0]) ** 2)  # (0 + 9 + 0) / 3
    value = loss.compute_loss({"t": teacher}, {"s": student}, Batch(None, None))
    assert float(value) == pytest.approx(expected) == pytest.approx(3.0)
    from tinykd_lab.tasks.text_transformer import classifier_config, distillation_losses

    entries = distillation_losses(
        classifier_config(300, 16, "teacher"), classifier_config(300, 16, "student")
    )
    hints = [entry for entry in entries if entry["name"] == "hint"]
    assert hints and all(entry["regressor"] == "linear" for entry in hints)


# Transformer layers and the classifier.


def test_attention_probabilities_match_numpy_softmax(rng):
    from tinykd_lab.tasks.transformer_layers import AttentionProbabilities

    query = rng.standard_normal((2, 5, 8)).astype(np.float32)
    key = rng.standard_normal((2, 5, 8)).astype(np.float32)
    for causal in (False, True):
        got = AttentionProbabilities(2, causal=causal)([query, key]).numpy()
        q, k = query.reshape(2, 5, 2, 4), key.reshape(2, 5, 2, 4)
        scores = np.einsum("bihd,bjhd->bhij", q, k) / 2.0
        if causal:
            scores = np.where(np.tril(np.ones((5, 5))) > 0, scores, -np.inf)
        expected = np.exp(scores - scores.max(-1, keepdims=True))
        expected /= expected.sum(-1, keepdims=True)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_teacher_layer_mapping_is_tinyberts():
    from tinykd_lab.tasks.text_transformer import mapped_teacher_layer

    assert [mapped_teacher_layer(m, 1, 2) for m in range(1)] == [1]
    assert [mapped_teacher_layer(m, 2, 4) for m in range(2)] == [1, 3]
    assert [mapped_teacher_layer(m, 3, 12) for m in range(3)] == [3, 7, 11]


@pytest.mark.slow
def test_tiny_transformer_teacher_scratch_and_distilled():
    from tinykd_lab.tasks import text_transformer

    splits = binary_sentiment(load_sample(), seed=0)
    # Whole batches only: a last, smaller batch would trace every train step twice.
    splits.texts_train, splits.y_train = splits.texts_train[:64], splits.y_train[:64]
    result = text_transformer.compare(
        splits,
        teacher_epochs=1,
        student_epochs=1,
        batch_size=32,
        vocabulary_size=300,
        sequence_length=16,
        ablation=False,
        export=False,  # the int8 path is checked in the next test
    )
    assert result.teacher_params > 3 * result.student_params
    # Each figure is a share of whole test sentences: a multiple of 100 / (test size).
    test_size = len(splits.texts_test)
    for accuracy in (result.teacher, result.scratch, result.distilled):
        correct = accuracy * test_size / 100
        assert correct == pytest.approx(round(correct), abs=1e-6)
    assert "| sentiment (VADER sentences) | accuracy % |" in result.row()


def test_int8_transformer_agrees_with_float_in_tflm():
    """Token ids stay int32; the int8 logits in TFLM track the float ones."""
    from tinykd_lab.tasks.int8_export import export_int8, tflm_predict
    from tinykd_lab.tasks.text_transformer import classifier_config, encode_sentiment
    from tinykd_lab.tasks.transformer_layers import build_transformer

    encoded = encode_sentiment(binary_sentiment(load_sample(), seed=0), 300, 16, min_count=1)
    model = build_transformer(classifier_config(len(encoded.vocabulary), 16, "student"))
    x = encoded.data.x_test
    exported = export_int8(model, encoded.data.x_train)
    got = tflm_predict(exported.tflite, x)
    expected = model.predict(x, verbose=0)
    assert got.shape == expected.shape
    spread = expected.max() - expected.min()
    assert np.max(np.abs(got - expected)) < 0.1 * spread
    assert {"GATHER", "BATCH_MATMUL", "SOFTMAX", "RSQRT"} <= set(exported.operators)
    assert exported.arena.minimum_bytes > 0
