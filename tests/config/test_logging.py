"""Development logging: readable lines, and tracebacks that cost nothing to render."""

from __future__ import annotations

import subprocess
import sys
import textwrap

LOG_AN_ERROR = textwrap.dedent(
    """
    import structlog
    from simlab.config.logging import configure_logging

    configure_logging(json_logs=False)
    log = structlog.get_logger("probe")

    def deep(n, payload):
        if n == 0:
            raise ValueError("probe failure")
        return deep(n - 1, payload)

    try:
        deep(30, {i: list(range(50)) for i in range(500)})
    except ValueError:
        log.exception("unhandled_exception")
    """
)


def test_development_tracebacks_are_plain_without_frame_locals() -> None:
    """Rich's formatter (structlog's default when rich is installed) rendered each frame's
    locals: an ASGI app's frames took seconds per 500, on the event loop."""
    done = subprocess.run(
        [sys.executable, "-c", LOG_AN_ERROR], capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert "ValueError: probe failure" in output
    assert "Traceback (most recent call last)" in output
    assert "locals" not in output
    assert "payload" not in output
