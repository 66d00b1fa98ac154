"""Unit tests of :mod:`trajops.training`."""
