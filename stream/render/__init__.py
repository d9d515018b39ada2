"""Presentation shared by the read side and the offline reports: pure functions to strings.

Only :mod:`schemas` and :mod:`stream.core` below it, so the API's page, the terminal views,
the demo and the backtest reports can all use it without importing each other.
"""
