"""The operations dashboard: models, traffic, accuracy, experiments, drift, alerts, trajectories.

The data layer (:mod:`~trajops.dashboard.client`, :mod:`~trajops.dashboard.live`,
:mod:`~trajops.dashboard.sources`, :mod:`~trajops.dashboard.context`) has no Streamlit in it;
the pages live in :mod:`trajops.dashboard.views` and the Streamlit script is ``app.py``
(started by ``trajops dashboard``).
"""
