"""Unit tests of :mod:`trajops.tracking`."""
