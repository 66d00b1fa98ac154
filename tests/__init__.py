"""The test suite: unit, integration, e2e, reliability and container tests of trajops."""
