"""Training strategies beyond one student against one teacher, registered in ``STRATEGIES``.

- ``born_again``: self-distillation over generations of the same architecture;
- ``mutual``: deep mutual learning of K peers (online distillation, no teacher needed);
- ``deep_supervision``: auxiliary heads on shallower blocks, taught by the deepest head;
- ``netaug``: Network Augmentation, the tiny model as the leading slice of wider ones.

Each returns a plain student model of the configured architecture, ready for int8.
"""

from tinykd.strategies import (  # noqa: F401  (register the strategies)
    born_again,
    deep_supervision,
    mutual,
    netaug,
)
from tinykd.strategies.base import (
    STRATEGIES,
    Strategy,
    StrategyResult,
    build_strategy,
    strategy_parameters,
)
from tinykd.strategies.batch_norm import reestimate_batch_norm
from tinykd.strategies.supernet import Supernet

__all__ = [
    "STRATEGIES",
    "Strategy",
    "StrategyResult",
    "Supernet",
    "build_strategy",
    "reestimate_batch_norm",
    "strategy_parameters",
]
