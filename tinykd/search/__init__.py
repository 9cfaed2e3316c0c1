"""``tinykd search``: the most accurate student that fits a board.

candidates → exact int8 cost of each *untrained* candidate (drop what cannot fit) →
distillation under successive halving (an Optuna study in SQLite, resumable) → the Pareto
front over int8 accuracy, arena, latency and flash → the chosen student exported as
``tinykd run`` exports one.
"""
