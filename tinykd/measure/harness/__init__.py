"""The serial benchmark harness: protocol client, robust runner, reports, fault injector."""
