"""Unit tests of :mod:`trajops.cli`."""
