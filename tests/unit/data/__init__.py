"""Unit tests of :mod:`trajops.data`."""
