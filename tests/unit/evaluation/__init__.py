"""Unit tests of :mod:`trajops.evaluation`."""
