"""Unit tests of :mod:`trajops.batch`."""
