"""Settings shared by the harness tests (a module name no other test folder uses)."""

from tinykd.measure.harness.client import Timeouts
from tinykd.measure.harness.runner import SessionOptions

SAMPLES = 60

# Short enough that injected faults cost little; long enough for a loaded 2-core machine.
FAST = SessionOptions(
    timeouts=Timeouts(command=1.0, infer=4.0, quiet=0.05),
    reconnect_attempts=3,
    reconnect_wait=0.2,
)
