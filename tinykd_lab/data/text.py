"""Real text for the sequence tasks: the 23,703 human-rated sentences of VADER (Hutto & Gilbert 2014).

The vaderSentiment 3.3.2 source distribution (MIT) ships ``additional_resources/
hutto_ICWSM_2014.tar.gz``: four ``*_GroundTruth.txt`` files (tweets, New York Times
editorial snippets, movie-review snippets, Amazon review snippets), one sentence a line as
``id<TAB>mean rating<TAB>text``. Each rating is the mean of at least 20 human raters on a
−4 (extremely negative) … +4 (extremely positive) scale. ``scripts/setup.sh`` fetches the
sdist once into the data directory; nothing here downloads.

Binary sentiment is derived honestly: ratings within ±``neutral_margin`` (0.5 by default)
are near-neutral and left out — every dropped sentence is counted in the dataset's notes.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinykd.errors import TinyKDError

VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_CORPORA = ("tweets", "nytEditorialSnippets", "movieReviewSnippets", "amazonReviewSnippets")
VADER_SENTENCE_COUNT = 23_703
SETUP_COMMAND = (
    "bash scripts/setup.sh (or: python3 -m pip download --no-binary :all: --no-deps "
    'vaderSentiment==3.3.2 -d "${TINYKD_DATA_DIR:-$HOME/.cache/tinykd/data}")'
)


@dataclass(frozen=True)
class RatedSentence:
    corpus: str
    sentence_id: str
    rating: float  # mean human rating, −4 … +4
    text: str


@dataclass
class TextSplits:
    """Sentences and labels split into train / validation / test, plus how they were made."""

    texts_train: list[str]
    y_train: np.ndarray
    texts_val: list[str]
    y_val: np.ndarray
    texts_test: list[str]
    y_test: np.ndarray
    class_names: list[str]
    source: str
    notes: list[str] = field(default_factory=list)


def data_dir() -> Path:
    """Where setup puts downloaded data: ``$TINYKD_DATA_DIR`` or ``~/.cache/tinykd/data``."""
    return Path(os.environ.get("TINYKD_DATA_DIR", Path.home() / ".cache" / "tinykd" / "data"))


def vader_sdist_path(directory: Path | None = None) -> Path:
    """The vaderSentiment sdist fetched by setup; missing is an error naming the setup command."""
    path = (directory or data_dir()) / VADER_SDIST
    if not path.exists():
        raise TinyKDError(
            f"The VADER rated sentences are not installed ({path} is missing). Fetch them once "
            f"with: {SETUP_COMMAND}"
        )
    return path


def load_vader_sentences(path: Path | None = None, verify: bool = True) -> list[RatedSentence]:
    """All rated sentences, in file order (tweets, NYT, movies, Amazon)."""
    path = Path(path) if path is not None else vader_sdist_path()
    raw = path.read_bytes()
    if verify and hashlib.sha256(raw).hexdigest() != VADER_SDIST_SHA256:
        raise TinyKDError(
            f"{path} is not the vaderSentiment 3.3.2 sdist (SHA-256 differs); delete it and "
            f"fetch it again with: {SETUP_COMMAND}"
        )
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as outer:
            inner_bytes = outer.extractfile(VADER_INNER_ARCHIVE).read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            files = {
                corpus: inner.extractfile(f"hutto_ICWSM_2014/{corpus}_GroundTruth.txt").read()
                for corpus in VADER_CORPORA
            }
    except (tarfile.TarError, KeyError, AttributeError, OSError) as exc:
        raise TinyKDError(f"Cannot read the rated sentences from {path}: {exc}") from None
    sentences = []
    for corpus, content in files.items():
        sentences += parse_ground_truth(content.decode("utf-8"), corpus)
    return sentences


def parse_ground_truth(content: str, corpus: str) -> list[RatedSentence]:
    """``id<TAB>rating<TAB>text`` lines; a malformed line is an error, never skipped."""
    sentences = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            if len(fields) != 3:
                raise ValueError(f"{len(fields)} tab-separated fields, expected 3")
            rating = float(fields[1])
        except ValueError as exc:
            raise TinyKDError(f"{corpus}_GroundTruth.txt line {number}: {exc}") from None
        sentences.append(RatedSentence(corpus, fields[0], rating, fields[2].strip()))
    return sentences


def binary_sentiment(
    sentences: list[RatedSentence],
    *,
    neutral_margin: float = 0.5,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    source: str = "vaderSentiment 3.3.2 sdist, hutto_ICWSM_2014",
) -> TextSplits:
    """Negative (rating ≤ −margin) vs positive (≥ +margin); near-neutral sentences are dropped.

    The split is a seeded permutation of the kept sentences (the same seed, the same split).
    """
    kept = [s for s in sentences if abs(s.rating) >= neutral_margin]
    if len(kept) < 3:
        raise TinyKDError(f"Only {len(kept)} sentences are outside ±{neutral_margin}.")
    texts = [s.text for s in kept]
    labels = np.array([int(s.rating > 0) for s in kept], dtype=np.int64)
    train, val, test = split_indices(len(kept), validation_fraction, test_fraction, seed)

    def pick(index):
        return [texts[i] for i in index], labels[index]

    notes = [
        f"{len(sentences)} rated sentences; {len(sentences) - len(kept)} near-neutral ones "
        f"(|mean rating| < {neutral_margin} on −4…+4) dropped; {len(kept)} kept, "
        f"{int(labels.sum())} positive / {int(len(labels) - labels.sum())} negative."
    ]
    return TextSplits(
        *pick(train), *pick(val), *pick(test), ["negative", "positive"], source, notes
    )


def split_indices(count: int, validation_fraction: float, test_fraction: float, seed: int):
    """Seeded (train, validation, test) index arrays of a permutation of ``range(count)``."""
    order = np.random.default_rng(seed).permutation(count)
    n_test = max(1, int(round(count * test_fraction)))
    n_val = int(round(count * validation_fraction))
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


# Tokenizers: plain, reproducible, no external vocabulary.

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]|:\)|:\(|:d|;\)")


def words(text: str) -> list[str]:
    """Lower-cased words, plus ``!``, ``?`` and a few emoticons (they carry sentiment)."""
    return _WORD.findall(text.lower())


@dataclass
class Vocabulary:
    """Token → id. Id 0 is padding, id 1 stands for every token outside the vocabulary."""

    tokens: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    PAD = 0
    UNKNOWN = 1

    def __post_init__(self):
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def fit(cls, sequences, max_size: int, min_count: int = 1) -> Vocabulary:
        """The ``max_size − 2`` most frequent tokens seen at least ``min_count`` times."""
        counts = collections.Counter(token for sequence in sequences for token in sequence)
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        return cls(("<pad>", "<unk>", *ranked[: max(0, max_size - 2)]))

    def __len__(self) -> int:
        return len(self.tokens)

    def ids(self, sequence) -> list[int]:
        return [self.index.get(token, self.UNKNOWN) for token in sequence]


def encode_words(texts: list[str], vocabulary: Vocabulary, length: int) -> np.ndarray:
    """(N, length) int32 word ids, truncated or right-padded with ``Vocabulary.PAD``."""
    encoded = np.full((len(texts), length), Vocabulary.PAD, dtype=np.int32)
    for row, text in enumerate(texts):
        ids = vocabulary.ids(words(text))[:length]
        encoded[row, : len(ids)] = ids
    return encoded
