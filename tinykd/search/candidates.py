"""The candidate students of a search: zoo families × widths × depths, plus the config's list.

Axes, and why only these:

- **family**: the zoo's student builders (``search.families``, default plain CNN,
  depthwise-separable CNN, and the two inverted-bottleneck nets).
- **width**: the channel multiplier every builder has (``search.widths``).
- **depth**: stages or blocks, for the families whose builder takes one (``search.depths``;
  plain_cnn's conv stages, ds_cnn's depthwise-separable blocks, the inverted-bottleneck
  blocks of mbv2_micro's and mbv2_tiny's last stage). Depth spent after the first pooling
  adds capacity and MACs but hardly any arena (the full-resolution first stage sets it):
  under a tight arena the deeper net is the one that can still grow.
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
    """One student architecture: a registered model at a width and depth."""

    model: str
    width: float
    source: str = "zoo"  # "zoo" (families × widths × depths) or "config" (search.candidates)
    depth: int | None = None  # None: the model's own

    @property
    def name(self) -> str:
        """A stable identifier, e.g. ``ds_cnn@0.5`` or, at a chosen depth, ``plain_cnn-d3@1.5``
        (the key of its trials in the study)."""
        model = self.model if self.depth is None else f"{self.model}-d{self.depth}"
        return f"{model}@{self.width:g}"


def search_candidates(search: SearchConfig) -> list[Candidate]:
    """Families × widths × depths, then the listed candidates, each architecture once."""
    from tinykd.models.builders import has_depth

    found: dict[str, Candidate] = {}
    for model in search.families:
        depths = search.depths if has_depth(model) and search.depths else [None]
        for depth in depths:
            for width in search.widths:
                candidate = Candidate(model, float(width), depth=chosen_depth(model, depth))
                found.setdefault(candidate.name, candidate)
    for entry in search.candidates:
        depth = chosen_depth(entry["model"], entry.get("depth"))
        candidate = Candidate(entry["model"], float(entry.get("width", 1.0)), "config", depth)
        found.setdefault(candidate.name, candidate)
    return list(found.values())


def chosen_depth(model: str, depth: int | None) -> int | None:
    """``depth``, or None where it is the model's own (one name per architecture)."""
    from tinykd.models.builders import own_depth

    return None if depth is None or depth == own_depth(model) else int(depth)
