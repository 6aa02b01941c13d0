"""What a request, a job and a command share: settings, the database, the job queue, the
inbox handlers and the platforms' discount-code issuers and disablers. One per app; tests make
their own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .config import Settings
from .db import Database
from .jobs import JobQueue
from .loyalty.inbox import BatchTopicHandler, TopicHandler
from .loyalty.rewards import CodeDisabler, CodeIssuer


@dataclass
class Runtime:
    settings: Settings
    database: Database
    handlers: Mapping[tuple[str, str], TopicHandler]
    batch_handlers: Mapping[tuple[str, str], BatchTopicHandler] = field(default_factory=dict)
    code_issuers: dict[str, CodeIssuer] = field(default_factory=dict)
    code_disablers: dict[str, CodeDisabler] = field(default_factory=dict)
    jobs: JobQueue = field(init=False)

    def __post_init__(self) -> None:
        self.jobs = JobQueue(self)
