"""What one worker is made of, shared by the module that builds it and the agent that runs on it.

``agents/app.py`` builds a :class:`ChurnApp` and ``agents/ingest.py`` registers the agent on it.
The type lives here so that imports go one way (app -> ingest -> churn), with no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faust

from stream.core.policy import Policy
from stream.kafka.settings import WorkerSettings
from stream.run.delivery import DeliveryGate
from stream.run.live import LiveProcessor
from stream.run.metrics import Registry


@dataclass
class ChurnApp:
    app: faust.App
    settings: WorkerSettings
    policy: Policy
    inputs: Any  # faust topics: their generic types say nothing useful for raw bytes
    alerts: Any
    dead_letters: Any
    health: str | None  # the account-health topic's name; None when snapshots are off
    table: Any
    processor: LiveProcessor
    gate: DeliveryGate
    metrics: Registry = field(default_factory=Registry)  # served at /metrics (agents/metrics.py)

    @property
    def topics(self) -> tuple[str, str]:
        """The input topics in source order (0 usage, 1 billing), as checkpoints hold them."""
        return (self.settings.usage_topic, self.settings.billing_topic)
