"""Unit tests of :mod:`trajops.privacy`."""
