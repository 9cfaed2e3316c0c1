"""The candidate students of a search: zoo families × widths, plus the config's own list.

Axes, and why only these:

- **family**: the zoo's student builders (``search.families``, default plain CNN,
  depthwise-separable CNN, and the two inverted-bottleneck nets). The zoo's builders take no
  depth argument; depth varies between families (``mbv2_micro`` is ``mbv2_tiny`` with one
  stage instead of two).
- **width**: the channel multiplier every builder has (``search.widths``).
- **input resolution** is *not* an axis: the built-in datasets are loaded at their own size
  (only ``image_folder`` resizes, once, at load), and ``bench`` and ``train-and-flash`` feed
  a run's test data at that size, so a student with a smaller input could not be taken
  unchanged by them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinykd.config import SearchConfig


@dataclass(frozen=True)
class Candidate:
    """One student architecture: a registered model at a width."""

    model: str
    width: float
    source: str = "zoo"  # "zoo" (families × widths) or "config" (search.candidates)

    @property
    def name(self) -> str:
        """A stable identifier, e.g. ``ds_cnn@0.5`` (the key of its trials in the study)."""
        return f"{self.model}@{self.width:g}"


def search_candidates(search: SearchConfig) -> list[Candidate]:
    """Families × widths, then the listed candidates, each architecture once."""
    found: dict[str, Candidate] = {}
    for model in search.families:
        for width in search.widths:
            candidate = Candidate(model, float(width))
            found.setdefault(candidate.name, candidate)
    for entry in search.candidates:
        candidate = Candidate(entry["model"], float(entry.get("width", 1.0)), "config")
        found.setdefault(candidate.name, candidate)
    return list(found.values())
