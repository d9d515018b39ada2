"""Learning from history: backtest, calibrate and the churn-risk model.

Reading map: ``evaluation`` (one replay of a log for scoring), ``outcomes`` (who cancelled,
voluntary or not), ``backtest`` (precision, recall, lead time, volume by the account rules),
``calibrate`` (danger-zone lines), ``risk_learning`` and ``risk_calibration`` (the logistic
model, its threshold, the naive baselines it must beat), ``danger_rerun`` and
``policy_rerun`` (the calibrated policies' alerts derived from calibrate's one replay),
``tuning`` (the two jobs the CLI runs), ``report_html`` (the reports). Never imports
:mod:`stream.sinks`.
"""

import os

# The model fits are small dense solves (rows x ~45 metrics): one BLAS thread does them faster
# than several even on an idle box, and on a busy one (calibrate's own jobs, other work)
# BLAS threads spinning for a core made the fits ten times slower. Set before numpy loads;
# a value the user exported wins.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
