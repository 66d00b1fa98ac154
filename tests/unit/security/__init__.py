"""Unit tests of :mod:`trajops.security`."""
