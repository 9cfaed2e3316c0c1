"""The committed slice of VADER's rated sentences (tests/lab/tasks/data/vader_sample.tsv)."""

from __future__ import annotations

from pathlib import Path

from tinykd_lab.data.text import RatedSentence

SAMPLE = Path(__file__).parent / "data" / "vader_sample.tsv"


def load_sample() -> list[RatedSentence]:
    sentences = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        corpus, sentence_id, rating, text = line.split("\t")
        sentences.append(RatedSentence(corpus, sentence_id, float(rating), text))
    return sentences
