"""Streamlit pages of the dashboard: one module per page, each with ``render(ctx)``."""
