"""structlog for every process: JSON lines in production, readable in development.

Standard-library records (Django, uvicorn, Celery) go through the same processors,
so each line carries the request id bound by the request-id middleware.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import structlog

_configured = False

# Celery's own lines about each task: sent by the beat, received, succeeded.
_CELERY_TASK_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")


class RoutineTaskFilter(logging.Filter):
    """Drops Celery's informational lines about the beat's routine tasks (a remote-run
    poll every few seconds would otherwise be most of a quiet platform's log); their
    warnings and errors, and everything the tasks log themselves, stay."""

    def __init__(self, task_names: frozenset[str]) -> None:
        super().__init__()
        self.task_names = task_names

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or not self.task_names:
            return True
        message = record.getMessage()
        return not any(name in message for name in self.task_names)


def configure_logging(
    *, json_logs: bool, level: str = "INFO", routine_tasks: frozenset[str] = frozenset()
) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        # Plain tracebacks: rich's (the default when rich is installed) renders every
        # frame's locals, seconds per error on the event loop for an ASGI app's frames.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"routine_tasks": {"()": RoutineTaskFilter, "task_names": routine_tasks}},
            "formatters": {
                "structlog": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        *([structlog.processors.format_exc_info] if json_logs else []),
                        renderer,
                    ],
                    "foreign_pre_chain": shared,
                }
            },
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
            "root": {"handlers": ["console"], "level": level},
            "loggers": {
                "django.db.backends": {"level": "WARNING"},
                # uvicorn configures its loggers (own handlers, no propagation) before it
                # loads the app; these lines take them over, so its lines share our format.
                "uvicorn": {"handlers": ["console"], "propagate": False},
                # billiard (Celery's pool) logs as "multiprocessing" without propagating:
                # with no handler of its own, Python would print its errors as bare text.
                "multiprocessing": {"handlers": ["console"], "propagate": False},
                # One access line per request comes from simlab.core.asgi (with the route,
                # latency and request id); uvicorn's own would repeat it.
                "uvicorn.access": {"level": "WARNING", "propagate": True},
                **{name: {"filters": ["routine_tasks"]} for name in _CELERY_TASK_LOGGERS},
            },
        }
    )
    # Python's warnings (a library's, Celery's about running as root) become log records:
    # written straight to stderr they would break the one-object-per-line format.
    logging.captureWarnings(True)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
