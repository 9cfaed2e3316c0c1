"""The serial benchmark harness: the MLPerf Tiny / tkd protocol on the host side (``protocol``,
``link``, ``client``), the robust runner, reports and the fault injector.

The devices it talks to (``tinykd.measure.devices``) build on it; it never imports them.
"""
