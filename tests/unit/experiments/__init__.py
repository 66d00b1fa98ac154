"""Unit tests of :mod:`trajops.experiments`."""
