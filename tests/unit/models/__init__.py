"""Unit tests of :mod:`trajops.models`."""
