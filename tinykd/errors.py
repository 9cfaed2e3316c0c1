"""User-facing errors.

Anything a user can fix (bad config, missing data, a model that does not fit) raises
``TinyKDError`` with one readable message saying what to do. The command line prints the
message and exits with status 2 instead of showing a traceback.
"""


class TinyKDError(Exception):
    """An error the user can act on; its message is shown as is."""
