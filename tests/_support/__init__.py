"""Helpers shared by tests: real local services started and stopped by the tests themselves."""
