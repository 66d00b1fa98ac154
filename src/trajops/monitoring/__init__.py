"""Production monitoring: input drift, online accuracy, alert rules and notifiers.

Submodules are imported where used (``from trajops.monitoring.drift import DriftDetector``):
:mod:`trajops.monitoring.drift` pulls in Evidently, which the serving path should not pay for.
"""
