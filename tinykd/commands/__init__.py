"""The ``tinykd`` subcommands, each a plain function with named parameters.

``tinykd/cli.py`` parses the command line and calls one of these; they call each other
directly (``train_and_flash`` ends in ``deploy`` and ``bench``), never through an argument
list. This is the top layer: it may use every other package, and none uses it.
"""
