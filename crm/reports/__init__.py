"""Manager reports: imported checks and stays, KPIs, room figures, exports."""
