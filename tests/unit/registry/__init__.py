"""Unit tests of :mod:`trajops.registry`."""
