"""Unit tests, one folder per source package (packages, so test modules may share a name)."""
