"""Every distillation loss against an independent NumPy implementation on small fixed tensors.

Inputs come from a closed formula (``fixed``), so they never change; the NumPy references
are written with explicit loops over samples, channels and pairs, not as a copy of the
vectorized TensorFlow code.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.distill.distiller import ModelTaps
from tinykd.distill.losses import Batch, build_loss
from tinykd.distill.losses.sparsity import activation_agreement
from tinykd.distill.losses.weights import fixed_projections, selection_matrix
from tinykd.errors import TinyKDError


def fixed(shape, phase: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Deterministic values in [-scale, scale]: sin of a ramp, rounded to 3 decimals."""
    count = int(np.prod(shape))
    values = np.round(scale * np.sin(np.arange(count) * 0.731 + phase), 3)
    return values.reshape(shape).astype(np.float32)


LABELS = np.array([2, 0, 1], dtype=np.int64)


def value_of(
    loss, teacher: dict, student: dict, labels=LABELS, shapes=True, training=False
) -> float:
    if shapes:
        loss.build_for(
            {k: (None, *np.shape(v)[1:]) for k, v in teacher.items()},
            {k: (None, *np.shape(v)[1:]) for k, v in student.items()},
        )
    teacher = {k: tf.constant(v) for k, v in teacher.items()}
    student = {k: tf.constant(v) for k, v in student.items()}
    batch = Batch(None, tf.constant(labels), training=training)
    return float(loss.compute_loss(teacher, student, batch))


def softmax(values):
    exps = [math.exp(v - max(values)) for v in values]
    return [e / sum(exps) for e in exps]


# Logits.
TEACHER_LOGITS = fixed((3, 4), 0.3, 3.0)
STUDENT_LOGITS = fixed((3, 4), 1.9, 2.0)


def numpy_kd(teacher, student, temperature):
    total = 0.0
    for t_row, s_row in zip(teacher, student):
        p = softmax([v / temperature for v in t_row])
        q = softmax([v / temperature for v in s_row])
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    return temperature**2 * total / len(teacher)


def numpy_dkd_terms(t_row, s_row, label, temperature):
    p = softmax([v / temperature for v in t_row])
    q = softmax([v / temperature for v in s_row])
    pt, qt = p[label], q[label]
    tckd = pt * math.log(pt / qt) + (1 - pt) * math.log((1 - pt) / (1 - qt))
    others = [k for k in range(len(t_row)) if k != label]
    p_hat = softmax([t_row[k] / temperature for k in others])
    q_hat = softmax([s_row[k] / temperature for k in others])
    nckd = sum(a * math.log(a / b) for a, b in zip(p_hat, q_hat))
    return tckd, nckd, pt


def test_kd_matches_numpy():
    teacher, student = {"logits": TEACHER_LOGITS}, {"logits": STUDENT_LOGITS}
    assert value_of(build_loss("kd", temperature=3.0), teacher, student) == pytest.approx(
        numpy_kd(TEACHER_LOGITS, STUDENT_LOGITS, 3.0), rel=1e-5
    )


def test_kd_default_temperature_is_four():
    teacher, student = {"logits": TEACHER_LOGITS}, {"logits": STUDENT_LOGITS}
    assert value_of(build_loss("kd"), teacher, student) == pytest.approx(
        numpy_kd(TEACHER_LOGITS, STUDENT_LOGITS, 4.0), rel=1e-5
    )


def numpy_standardized(row):
    """z-score with the unbiased standard deviation (the reference code's torch ``std``)."""
    mean = sum(row) / len(row)
    std = math.sqrt(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
    return [(v - mean) / (1e-7 + std) for v in row]


def test_logit_standardized_kd_matches_numpy_and_ignores_the_students_logit_range():
    # By hand: (1, 2, 3, 4) has mean 2.5 and unbiased std √(5/3), so z = ±0.3873, ±1.1619.
    assert numpy_standardized([1.0, 2.0, 3.0, 4.0]) == pytest.approx(
        [-1.161895, -0.387298, 0.387298, 1.161895], rel=1e-5
    )
    teacher = {"logits": TEACHER_LOGITS}
    loss = build_loss("kd", temperature=2.0, standardize=True)
    expected = numpy_kd(
        [numpy_standardized(row) for row in TEACHER_LOGITS],
        [numpy_standardized(row) for row in STUDENT_LOGITS],
        2.0,
    )
    assert value_of(loss, teacher, {"logits": STUDENT_LOGITS}) == pytest.approx(expected, rel=1e-5)
    # A student with the teacher's logit relations at a third of its range and shifted:
    # nothing to learn once standardized; plain KD still asks for the teacher's range.
    shrunk = {"logits": TEACHER_LOGITS / 3.0 - 1.0}
    assert value_of(loss, teacher, shrunk) == pytest.approx(0.0, abs=1e-6)
    assert value_of(build_loss("kd", temperature=2.0), teacher, shrunk) > 0.1


def numpy_logit_regression(teacher, student):
    """Ba & Caruana's objective: half the squared L2 distance of the logits, batch mean."""
    total = 0.0
    for t_row, s_row in zip(teacher, student):
        total += 0.5 * sum((float(s) - float(t)) ** 2 for s, t in zip(s_row, t_row))
    return total / len(teacher)


def test_logit_mse_is_half_the_summed_square_by_default_and_the_mean_on_request():
    teacher, student = {"logits": TEACHER_LOGITS}, {"logits": STUDENT_LOGITS}
    # By hand for the first sample: teacher (0.887, 2.573, 2.945, 1.812), student (1.893,
    # 0.977, −0.437, −1.628): ½ (1.006² + 1.596² + 3.382² + 3.44²) = ½ · 26.830776.
    assert numpy_logit_regression(TEACHER_LOGITS[:1], STUDENT_LOGITS[:1]) == pytest.approx(
        13.415388, rel=1e-6
    )
    assert value_of(build_loss("logit_mse"), teacher, student) == pytest.approx(
        numpy_logit_regression(TEACHER_LOGITS, STUDENT_LOGITS), rel=1e-6
    )
    mean = np.mean([(s - t) ** 2 for s, t in zip(STUDENT_LOGITS.flat, TEACHER_LOGITS.flat)])
    value = value_of(build_loss("logit_mse", reduction="mean"), teacher, student)
    assert value == pytest.approx(mean, rel=1e-6)
    with pytest.raises(TinyKDError, match="reduction must be one of half_sum, mean"):
        build_loss("logit_mse", reduction="sum")


def test_decoupled_kd_matches_numpy_and_recomposes_classic_kd():
    temperature, alpha, beta = 2.0, 1.5, 6.0
    loss = build_loss("dkd", temperature=temperature, alpha=alpha, beta=beta)
    terms = [
        numpy_dkd_terms(t, s, label, temperature)
        for t, s, label in zip(TEACHER_LOGITS, STUDENT_LOGITS, LABELS)
    ]
    expected = temperature**2 * np.mean([alpha * tckd + beta * nckd for tckd, nckd, _ in terms])
    value = value_of(loss, {"logits": TEACHER_LOGITS}, {"logits": STUDENT_LOGITS})
    assert value == pytest.approx(expected, rel=1e-5)
    # The paper's identity KD = TCKD + (1 − p_t)·NCKD checks the reference itself.
    recomposed = temperature**2 * np.mean([t + (1 - pt) * n for t, n, pt in terms])
    assert recomposed == pytest.approx(
        numpy_kd(TEACHER_LOGITS, STUDENT_LOGITS, temperature), rel=1e-6
    )


def numpy_pearson(xs, ys):
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    spread_x = math.sqrt(sum((x - mean_x) ** 2 for x in xs))
    spread_y = math.sqrt(sum((y - mean_y) ** 2 for y in ys))
    return covariance / (spread_x * spread_y)


def numpy_dist(teacher, student, temperature, beta, gamma):
    """DIST from its definition: 1 − mean Pearson ρ over samples (rows) and over classes
    (columns) of the softened probabilities."""
    p = [softmax([v / temperature for v in row]) for row in teacher]
    q = [softmax([v / temperature for v in row]) for row in student]
    rows = [numpy_pearson(q_row, p_row) for q_row, p_row in zip(q, p)]
    columns = [
        numpy_pearson([row[k] for row in q], [row[k] for row in p]) for k in range(len(p[0]))
    ]
    inter_class = 1 - sum(rows) / len(rows)
    intra_class = 1 - sum(columns) / len(columns)
    return temperature**2 * (beta * inter_class + gamma * intra_class)


def test_dist_matches_numpy_and_is_zero_for_the_teachers_own_logits():
    # By hand: (1, 2, 3) against (2, 4, 7): centred (−1, 0, 1) and (−2.333, −0.333, 2.667),
    # covariance 5, spreads √2 and √12.667, ρ = 5 / √25.333 = 0.99339.
    assert numpy_pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(0.993399, rel=1e-5)
    teacher = {"logits": TEACHER_LOGITS}
    loss = build_loss("dist", temperature=4.0, beta=2.0, gamma=0.5)
    expected = numpy_dist(TEACHER_LOGITS, STUDENT_LOGITS, 4.0, 2.0, 0.5)
    assert value_of(loss, teacher, {"logits": STUDENT_LOGITS}) == pytest.approx(expected, rel=1e-5)
    assert value_of(build_loss("dist"), teacher, teacher) == pytest.approx(0.0, abs=1e-6)
    defaults = build_loss("dist").config_entry()
    assert (defaults["temperature"], defaults["beta"], defaults["gamma"]) == (1.0, 1.0, 1.0)


# Feature maps: (batch 3, 4×4, teacher 5 / student 2 channels).
TEACHER_MAP = fixed((3, 4, 4, 5), 0.1)
STUDENT_MAP = fixed((3, 4, 4, 2), 2.2)


def numpy_average_pool(maps, factor):
    batch, height, width, channels = maps.shape
    out = np.zeros((batch, height // factor, width // factor, channels))
    for b, i, j, c in itertools.product(
        range(batch), range(height // factor), range(width // factor), range(channels)
    ):
        out[b, i, j, c] = maps[
            b, i * factor : (i + 1) * factor, j * factor : (j + 1) * factor, c
        ].mean()
    return out


def numpy_bilinear(maps, height, width):
    """Half-pixel-centre bilinear resize, clamped at the borders."""
    batch, source_height, source_width, channels = maps.shape
    out = np.zeros((batch, height, width, channels))
    for i, j in itertools.product(range(height), range(width)):
        y = min(max((i + 0.5) * source_height / height - 0.5, 0), source_height - 1)
        x = min(max((j + 0.5) * source_width / width - 0.5, 0), source_width - 1)
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        y1, x1 = min(y0 + 1, source_height - 1), min(x0 + 1, source_width - 1)
        dy, dx = y - y0, x - x0
        out[:, i, j, :] = (
            maps[:, y0, x0] * (1 - dy) * (1 - dx)
            + maps[:, y0, x1] * (1 - dy) * dx
            + maps[:, y1, x0] * dy * (1 - dx)
            + maps[:, y1, x1] * dy * dx
        )
    return out


def set_projection(loss, kernel, bias):
    projector = loss.alignment.projector
    projector.set_weights([kernel.reshape(projector.get_weights()[0].shape), bias])


def numpy_project(maps, kernel, bias):
    """A 1×1 convolution: every pixel's channel vector times the kernel, plus the bias."""
    out = np.zeros((*maps.shape[:-1], kernel.shape[1]))
    for index in itertools.product(*[range(n) for n in maps.shape[:-1]]):
        out[index] = maps[index] @ kernel + bias
    return out


PROJECTION_KERNEL = fixed((2, 5), 0.5)
PROJECTION_BIAS = fixed((5,), 1.1, 0.1)


def numpy_batch_norm(maps, gamma, beta, mean=None, variance=None, epsilon=1e-3):
    """Per channel: (x − μ) / √(σ² + ε) · γ + β, with μ, σ² over batch and positions (the
    batch's biased statistics) unless given (the moving averages)."""
    out = np.zeros(maps.shape)
    for c in range(maps.shape[-1]):
        values = [float(v) for v in maps[..., c].flat]
        if mean is None:
            mu = sum(values) / len(values)
            var = sum((v - mu) ** 2 for v in values) / len(values)
        else:
            mu, var = float(mean[c]), float(variance[c])
        out[..., c] = gamma[c] * (maps[..., c] - mu) / math.sqrt(var + epsilon) + beta[c]
    return out


BN_GAMMA, BN_BETA = fixed((5,), 0.4, 0.5) + 1.0, fixed((5,), 2.0, 0.3)
BN_MOVING_MEAN, BN_MOVING_VARIANCE = fixed((5,), 1.0, 0.2), fixed((5,), 3.0, 0.5) + 1.0


def set_regressor(loss, kernel):
    """A bias-free 1×1 kernel, then γ, β and moving statistics of the regressor's BN."""
    loss.alignment.projector.set_weights([kernel.reshape(1, 1, *kernel.shape)])
    loss.alignment.normalization.set_weights(
        [BN_GAMMA, BN_BETA, BN_MOVING_MEAN, BN_MOVING_VARIANCE]
    )


def test_hint_regressor_is_conv_batch_norm_relu_by_default():
    loss = build_loss("hint", teacher_tap="t", student_tap="s", projection="conv1x1")
    loss.build_for({"t": (None, 4, 4, 5)}, {"s": (None, 4, 4, 2)})
    assert loss.alignment.regressor == "batch_norm_relu"
    set_regressor(loss, PROJECTION_KERNEL)
    projected = numpy_project(STUDENT_MAP, PROJECTION_KERNEL, np.zeros(5))
    for training, statistics in ((False, (BN_MOVING_MEAN, BN_MOVING_VARIANCE)), (True, ())):
        regressed = np.maximum(numpy_batch_norm(projected, BN_GAMMA, BN_BETA, *statistics), 0)
        expected = np.mean((regressed - TEACHER_MAP) ** 2)
        value = value_of(
            loss, {"t": TEACHER_MAP}, {"s": STUDENT_MAP}, shapes=False, training=training
        )
        assert value == pytest.approx(expected, rel=1e-5), f"training={training}"
    # The training call moved the moving mean 1 % (momentum 0.99) towards the batch mean.
    batch_mean = [np.mean(projected[..., c]) for c in range(5)]
    np.testing.assert_allclose(
        loss.alignment.normalization.moving_mean.numpy(),
        [0.99 * m + 0.01 * b for m, b in zip(BN_MOVING_MEAN, batch_mean)],
        rtol=1e-5,
    )


def test_hint_with_a_linear_regressor_matches_numpy():
    loss = build_loss(
        "hint", teacher_tap="t", student_tap="s", projection="conv1x1", regressor="linear"
    )
    loss.build_for({"t": (None, 4, 4, 5)}, {"s": (None, 4, 4, 2)})
    set_projection(loss, PROJECTION_KERNEL, PROJECTION_BIAS)
    projected = numpy_project(STUDENT_MAP, PROJECTION_KERNEL, PROJECTION_BIAS)
    expected = np.mean((projected - TEACHER_MAP) ** 2)
    value = value_of(loss, {"t": TEACHER_MAP}, {"s": STUDENT_MAP}, shapes=False)
    assert value == pytest.approx(expected, rel=1e-5)
    assert loss.weight.numpy() == 100.0, "RepDistiller's default hint weight"


def test_hint_on_vectors_uses_a_dense_regressor():
    teacher, student = fixed((3, 5), 0.3), fixed((3, 2), 1.2)
    loss = build_loss(
        "hint", teacher_tap="t", student_tap="s", projection="auto", regressor="linear"
    )
    loss.build_for({"t": (None, 5)}, {"s": (None, 2)})
    assert isinstance(loss.alignment.projector, keras.layers.Dense)
    set_projection(loss, PROJECTION_KERNEL, PROJECTION_BIAS)
    expected = np.mean((numpy_project(student, PROJECTION_KERNEL, PROJECTION_BIAS) - teacher) ** 2)
    value = value_of(loss, {"t": teacher}, {"s": student}, shapes=False)
    assert value == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("teacher_size", "reference"),
    [
        (8, lambda maps: numpy_average_pool(maps, 2)),  # teacher 8×8 → student 4×4
        (3, lambda maps: numpy_bilinear(maps, 4, 4)),  # teacher 3×3 → student 4×4
    ],
)
def test_hint_resizes_a_teacher_map_of_another_resolution(teacher_size, reference):
    teacher_map = fixed((3, teacher_size, teacher_size, 2), 0.9)
    loss = build_loss("hint", teacher_tap="t", student_tap="s", projection="auto")
    value = value_of(loss, {"t": teacher_map}, {"s": STUDENT_MAP})
    assert loss.alignment.projector is None, "same channels: auto adds no projection"
    assert value == pytest.approx(np.mean((STUDENT_MAP - reference(teacher_map)) ** 2), rel=1e-5)


def numpy_attention(maps, power):
    rows = []
    for sample in maps:
        attention = np.array(
            [
                [np.mean(np.abs(sample[i, j, :]) ** power) for j in range(sample.shape[1])]
                for i in range(sample.shape[0])
            ]
        ).ravel()
        rows.append(attention / np.sqrt(np.sum(attention**2)))
    return np.array(rows)


def test_attention_transfer_matches_numpy():
    loss = build_loss("attention", teacher_tap="t", student_tap="s", power=2.0)
    expected = np.mean((numpy_attention(STUDENT_MAP, 2) - numpy_attention(TEACHER_MAP, 2)) ** 2)
    assert value_of(loss, {"t": TEACHER_MAP}, {"s": STUDENT_MAP}) == pytest.approx(
        expected, rel=1e-5
    )


def numpy_mmd(teacher_map, student_map, kernel):
    """Per sample: channels are samples (flattened, L2-normalized maps); mean of MMD²."""
    values = []
    for t_sample, s_sample in zip(teacher_map, student_map):
        t = [t_sample[..., c].ravel() / np.linalg.norm(t_sample[..., c]) for c in range(5)]
        s = [s_sample[..., c].ravel() / np.linalg.norm(s_sample[..., c]) for c in range(2)]

        def mean_kernel(a, b):
            return np.mean([kernel(x, y) for x in a for y in b])

        values.append(mean_kernel(t, t) + mean_kernel(s, s) - 2 * mean_kernel(s, t))
    return np.mean(values)


@pytest.mark.parametrize(
    ("params", "kernel"),
    [
        ({"kernel": "polynomial"}, lambda x, y: float(x @ y) ** 2),
        (
            {"kernel": "polynomial", "degree": 3, "constant": 0.5},
            lambda x, y: (float(x @ y) + 0.5) ** 3,
        ),
        (
            {"kernel": "gaussian", "sigma": 0.8},
            lambda x, y: math.exp(-np.sum((x - y) ** 2) / (2 * 0.8**2)),
        ),
    ],
)
def test_neural_selectivity_transfer_matches_numpy(params, kernel):
    loss = build_loss("nst", teacher_tap="t", student_tap="s", **params)
    assert value_of(loss, {"t": TEACHER_MAP}, {"s": STUDENT_MAP}) == pytest.approx(
        numpy_mmd(TEACHER_MAP, STUDENT_MAP, kernel), rel=1e-4
    )


# Relations between samples: (batch 4, teacher 6 / student 3 features).
TEACHER_FEATURES = fixed((4, 6), 0.2)
STUDENT_FEATURES = fixed((4, 3), 1.4)


def huber(x):
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def numpy_rkd(teacher, student, distance_weight, angle_weight):
    n = len(teacher)

    def distances(e):
        d = np.array([[np.linalg.norm(e[i] - e[j]) for j in range(n)] for i in range(n)])
        return d / (d.sum() / (n * (n - 1)))

    def angles(e):
        out = np.zeros((n, n, n))
        for i, j, k in itertools.product(range(n), repeat=3):
            a, b = e[i] - e[j], e[k] - e[j]
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            out[i, j, k] = 0.0 if na == 0 or nb == 0 else a @ b / (na * nb)
        return out

    distance_loss = np.mean([huber(x) for x in (distances(student) - distances(teacher)).flat])
    angle_loss = np.mean([huber(x) for x in (angles(student) - angles(teacher)).flat])
    return distance_weight * distance_loss + angle_weight * angle_loss


def test_relational_kd_matches_numpy_with_distance_and_angle_terms():
    # Features spread so that some distance differences exceed 1 (the Huber's linear part).
    teacher, student = TEACHER_FEATURES * 3, STUDENT_FEATURES
    for distance_weight, angle_weight in ((1.0, 0.0), (0.0, 1.0), (25.0, 50.0)):
        loss = build_loss(
            "rkd",
            teacher_tap="t",
            student_tap="s",
            distance_weight=distance_weight,
            angle_weight=angle_weight,
        )
        assert value_of(loss, {"t": teacher}, {"s": student}) == pytest.approx(
            numpy_rkd(teacher, student, distance_weight, angle_weight), rel=1e-4
        )


def test_similarity_preserving_matches_numpy_on_maps_of_different_sizes():
    def normalized_gram(maps):
        flat = maps.reshape(len(maps), -1).astype(np.float64)
        gram = np.array([[a @ b for b in flat] for a in flat])
        return np.array([row / np.linalg.norm(row) for row in gram])

    expected = (
        np.sum((normalized_gram(TEACHER_MAP) - normalized_gram(STUDENT_MAP)) ** 2)
        / len(TEACHER_MAP) ** 2
    )
    loss = build_loss("sp", teacher_tap="t", student_tap="s")
    assert value_of(loss, {"t": TEACHER_MAP}, {"s": STUDENT_MAP}) == pytest.approx(
        expected, rel=1e-5
    )


def numpy_fsp(first, second):
    if first.shape[1] > second.shape[1]:
        first = numpy_average_pool(first, first.shape[1] // second.shape[1])
    batch, height, width, m = first.shape
    n = second.shape[-1]
    out = np.zeros((batch, m, n))
    for b, i, j in itertools.product(range(batch), range(m), range(n)):
        out[b, i, j] = np.sum(first[b, :, :, i] * second[b, :, :, j]) / (height * width)
    return out


def test_fsp_matches_numpy_with_pooling_and_projection():
    teacher_start, teacher_end = fixed((3, 8, 8, 5), 0.4), fixed((3, 4, 4, 3), 1.7)
    student_start, student_end = fixed((3, 4, 4, 2), 2.9), fixed((3, 4, 4, 3), 0.6)
    loss = build_loss(
        "fsp",
        teacher_tap="a",
        teacher_end_tap="b",
        student_tap="c",
        student_end_tap="d",
        projection="auto",
    )
    loss.build_for(
        {"a": (None, 8, 8, 5), "b": (None, 4, 4, 3)}, {"c": (None, 4, 4, 2), "d": (None, 4, 4, 3)}
    )
    assert loss.end_alignment.projector is None, "same channel count: no projection"
    loss.start_alignment.projector.set_weights(
        [PROJECTION_KERNEL.reshape(1, 1, 2, 5), PROJECTION_BIAS]
    )
    student_fsp = numpy_fsp(
        numpy_project(student_start, PROJECTION_KERNEL, PROJECTION_BIAS), student_end
    )
    expected = np.mean((student_fsp - numpy_fsp(teacher_start, teacher_end)) ** 2)
    value = value_of(
        loss,
        {"a": teacher_start, "b": teacher_end},
        {"c": student_start, "d": student_end},
        shapes=False,
    )
    assert value == pytest.approx(expected, rel=1e-5)


# Sparsity patterns.
def numpy_boundary_violations(teacher, student, margin):
    """Per unit: the squared hinge on the teacher's side of zero (AB's alternative loss)."""
    return [
        (max(0.0, margin - s) ** 2 if t > 0 else max(0.0, margin + s) ** 2)
        for t, s in zip(teacher.flat, student.flat)
    ]


def test_activation_boundary_loss_and_agreement_match_numpy():
    teacher = fixed((3, 4, 4, 5), 0.8, 2.0)
    student = fixed((3, 4, 4, 5), 1.3, 2.0)
    margin = 0.5
    violations = numpy_boundary_violations(teacher, student, margin)
    loss = build_loss("activation_boundary", teacher_tap="t", student_tap="s", margin=margin)
    # The reference's scale: summed over the units, divided by the batch (3), weight 3/1000.
    assert value_of(loss, {"t": teacher}, {"s": student}) == pytest.approx(
        sum(violations) / 3, rel=1e-5
    )
    assert float(loss.weight.numpy()) == pytest.approx(0.003)
    mean = build_loss(
        "activation_boundary", teacher_tap="t", student_tap="s", margin=margin, reduction="mean"
    )
    assert value_of(mean, {"t": teacher}, {"s": student}) == pytest.approx(
        np.mean(violations), rel=1e-5
    )
    assert float(mean.weight.numpy()) == 1.0, "the earlier form keeps its weight of 1"
    agreement = np.mean([(t > 0) == (s > 0) for t, s in zip(teacher.flat, student.flat)])
    assert float(activation_agreement(tf.constant(teacher), tf.constant(student))) == pytest.approx(
        agreement
    )
    metrics = loss.compute_metrics({"t": tf.constant(teacher)}, {"s": tf.constant(student)}, None)
    assert float(metrics["agreement"]) == pytest.approx(agreement)
    # Patterns that agree beyond the margin cost nothing and agree fully.
    same = np.sign(teacher) * (margin + 1.0)
    assert value_of(loss, {"t": teacher}, {"s": same}) == pytest.approx(0.0, abs=1e-7)


def test_activation_boundary_connector_is_conv_and_batch_norm_without_relu():
    teacher = fixed((3, 4, 4, 5), 0.8, 2.0)
    loss = build_loss("activation_boundary", teacher_tap="t", student_tap="s", projection="auto")
    loss.build_for({"t": (None, 4, 4, 5)}, {"s": (None, 4, 4, 2)})
    assert loss.alignment.regressor == "batch_norm"
    set_regressor(loss, PROJECTION_KERNEL)
    projected = numpy_project(STUDENT_MAP, PROJECTION_KERNEL, np.zeros(5))
    connected = numpy_batch_norm(projected, BN_GAMMA, BN_BETA)  # signed: no ReLU
    assert connected.min() < -0.5
    expected = sum(numpy_boundary_violations(teacher, connected, 1.0)) / 3
    value = value_of(loss, {"t": teacher}, {"s": STUDENT_MAP}, shapes=False, training=True)
    assert value == pytest.approx(expected, rel=1e-5)


# Gradients: linear models have closed-form input gradients.
TEACHER_WEIGHTS = fixed((4, 3), 0.7)
STUDENT_WEIGHTS = fixed((4, 3), 2.4)
INPUTS = fixed((3, 4), 1.0)


def linear_model(weights, name):
    inputs = keras.Input((4,))
    layer = keras.layers.Dense(3, name=f"{name}_logits")
    model = keras.Model(inputs, layer(inputs), name=name)
    layer.set_weights([weights, np.zeros(3, np.float32)])
    return model


def gradient_loss_value(loss, teacher, student) -> float:
    """The loss on INPUTS/LABELS with gradient taps computed as the distiller does."""
    teacher_taps = ModelTaps(teacher, loss.teacher_taps)
    student_taps = ModelTaps(student, loss.student_taps)
    loss.build_for(teacher_taps.shapes, student_taps.shapes)
    inputs, labels = tf.constant(INPUTS), tf.constant(LABELS)
    return float(
        loss.compute_loss(
            teacher_taps(inputs, labels, training=False),
            student_taps(inputs, labels, training=False),
            Batch(inputs, labels),
        )
    )


def numpy_input_gradient(weights, x, label, objective):
    if objective == "target_logit":
        return weights[:, label]
    p = np.array(softmax(list(x @ weights)))
    return weights @ (p - np.eye(3)[label])


@pytest.mark.parametrize("objective", ["cross_entropy", "target_logit"])
@pytest.mark.parametrize("normalize", [True, False])
def test_input_gradient_matching_matches_numpy(objective, normalize):
    loss = build_loss("gradient", objective=objective, normalize=normalize)
    value = gradient_loss_value(
        loss, linear_model(TEACHER_WEIGHTS, "teacher"), linear_model(STUDENT_WEIGHTS, "student")
    )
    teacher_gradients = [
        numpy_input_gradient(TEACHER_WEIGHTS, x, y, objective) for x, y in zip(INPUTS, LABELS)
    ]
    student_gradients = [
        numpy_input_gradient(STUDENT_WEIGHTS, x, y, objective) for x, y in zip(INPUTS, LABELS)
    ]
    if normalize:
        expected = np.mean(
            [
                np.sum((s / np.linalg.norm(s) - t / np.linalg.norm(t)) ** 2)
                for s, t in zip(student_gradients, teacher_gradients)
            ]
        )
    else:
        expected = np.mean((np.array(student_gradients) - np.array(teacher_gradients)) ** 2)
    assert value == pytest.approx(expected, rel=1e-4)


def test_gradient_with_respect_to_a_tapped_activation_matches_numpy():
    """d CE / d hidden = W₂ (softmax(z) − onehot(y)) for hidden → Dense(W₂) → logits."""
    hidden_weights = fixed((3, 3), 0.2)

    def two_layer(name, first):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(3, name=f"{name}_hidden")
        output = keras.layers.Dense(3, name=f"{name}_logits")
        model = keras.Model(inputs, output(hidden(inputs)), name=name)
        hidden.set_weights([first, np.zeros(3, np.float32)])
        output.set_weights([hidden_weights, np.zeros(3, np.float32)])
        return model

    loss = build_loss("gradient", teacher_tap="t_hidden", student_tap="s_hidden")
    value = gradient_loss_value(
        loss, two_layer("t", TEACHER_WEIGHTS), two_layer("s", STUDENT_WEIGHTS)
    )

    def hidden_gradient(first, x, y):
        hidden = x @ first
        p = np.array(softmax(list(hidden @ hidden_weights)))
        g = hidden_weights @ (p - np.eye(3)[y])
        return g / np.linalg.norm(g)

    expected = np.mean(
        [
            np.sum(
                (hidden_gradient(STUDENT_WEIGHTS, x, y) - hidden_gradient(TEACHER_WEIGHTS, x, y))
                ** 2
            )
            for x, y in zip(INPUTS, LABELS)
        ]
    )
    assert value == pytest.approx(expected, rel=1e-4)


# Weights.
TEACHER_KERNEL = fixed((3, 3, 6, 8), 0.3)


def test_weight_selection_picks_evenly_spaced_channels():
    assert selection_matrix(8, 3).argmax(axis=0).tolist() == [0, 2, 5]
    projections = fixed_projections(TEACHER_KERNEL, (3, 3, 2, 3), "select")
    target = np.einsum("hwIO,Ii,Oo->hwio", TEACHER_KERNEL, *projections)
    assert np.array_equal(target, TEACHER_KERNEL[:, :, [0, 3]][:, :, :, [0, 2, 5]])


def test_svd_projection_is_orthonormal_and_spans_the_leading_directions():
    input_projection, output_projection = fixed_projections(TEACHER_KERNEL, (3, 3, 2, 3), "svd")
    for projection in (input_projection, output_projection):
        np.testing.assert_allclose(
            projection.T @ projection, np.eye(projection.shape[1]), atol=1e-5
        )
    # The output projection spans the top singular directions of the (h·w·in) × out unfolding:
    # projecting onto it keeps exactly the top-3 singular values' energy.
    unfolded = TEACHER_KERNEL.reshape(-1, 8)
    singular = np.linalg.svd(unfolded, compute_uv=False)
    kept = np.linalg.norm(unfolded @ output_projection) ** 2
    assert kept == pytest.approx(np.sum(singular[:3] ** 2), rel=1e-4)


@pytest.mark.parametrize("projection", ["select", "learned", "none"])
def test_weight_matching_matches_numpy(projection):
    def conv_model(name, channels_in, channels_out, kernel):
        inputs = keras.Input((5, 5, channels_in))
        layer = keras.layers.Conv2D(channels_out, 3, use_bias=False, name=f"{name}_conv")
        model = keras.Model(inputs, keras.layers.Flatten()(layer(inputs)), name=name)
        layer.set_weights([kernel])
        return model

    student_kernel = fixed((3, 3, 2, 3), 1.6) if projection != "none" else fixed((3, 3, 6, 8), 1.6)
    teacher = conv_model("t", 6, 8, TEACHER_KERNEL)
    student = conv_model("s", *student_kernel.shape[2:], student_kernel)
    loss = build_loss(
        "weights", teacher_layer="t_conv", student_layer="s_conv", projection=projection
    )
    loss.bind_models(teacher, student)
    if projection == "select":
        expected = np.mean((student_kernel - TEACHER_KERNEL[:, :, [0, 3]][:, :, :, [0, 2, 5]]) ** 2)
    elif projection == "none":
        expected = np.mean((student_kernel - TEACHER_KERNEL) ** 2)
    else:
        input_map, output_map = fixed((2, 6), 0.1), fixed((3, 8), 0.2)
        loss.input_map.assign(input_map)
        loss.output_map.assign(output_map)
        mapped = np.zeros(TEACHER_KERNEL.shape)
        for h, w, i, o in itertools.product(range(3), range(3), range(6), range(8)):
            mapped[h, w, i, o] = sum(
                student_kernel[h, w, a, b] * input_map[a, i] * output_map[b, o]
                for a in range(2)
                for b in range(3)
            )
        expected = np.mean((mapped - TEACHER_KERNEL) ** 2)
    value = float(loss.compute_loss({}, {}, None))
    assert value == pytest.approx(expected, rel=1e-5)
