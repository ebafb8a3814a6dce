"""Structured JSON logs, the same shape in every service."""

import logging
import sys

import structlog

from hookstream_common.tracing import add_trace_id


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send structlog and stdlib logs to stderr as one JSON object per line.

    Every line carries `service`, and `trace_id` when written inside a traced span; callers
    bind the ids a person searches for (tenant, webhook, delivery, event) with
    `structlog.contextvars` or `log.bind`.
    """
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared = [
        structlog.contextvars.merge_contextvars,
        add_trace_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # first: a dropped line costs next to nothing
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    handler.addFilter(OncePerInterval("aiokafka"))


class OncePerInterval(logging.Filter):
    """Lets one line of each message template of a library through per `seconds`: during a
    broker outage aiokafka repeats "Unable connect to node" thousands of times a minute."""

    def __init__(self, prefix: str, seconds: float = 10.0) -> None:
        super().__init__()
        self._prefix = prefix
        self._seconds = seconds
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefix):
            return True
        key = (record.name, record.msg)
        last = self._last.get(key)
        if last is not None and record.created - last < self._seconds:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = record.created
        return True
