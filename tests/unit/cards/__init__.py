"""Unit tests of :mod:`trajops.cards`."""
