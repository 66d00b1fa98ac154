"""The ``trajops`` command line."""
