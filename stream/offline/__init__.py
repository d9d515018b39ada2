"""Learning from history: backtest, calibrate and the churn-risk model.

Reading map: ``evaluation`` (one replay of a log for scoring), ``outcomes`` (who cancelled,
voluntary or not), ``backtest`` (precision, recall, lead time, volume by the account rules),
``calibrate`` (danger-zone lines), ``risk_learning`` and ``risk_calibration`` (the logistic
model, its threshold, the naive baselines it must beat), ``tuning`` (the two jobs the CLI
runs), ``report_html`` (the reports). Never imports :mod:`stream.sinks`.
"""
