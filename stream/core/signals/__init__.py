"""Churn signals: one module per family, each signal's detector next to its policy class.

:mod:`stream.core.signals.registry` declares every signal once (one ``SignalSpec`` line);
:mod:`stream.core.signals.base` holds what all detectors share.
"""
