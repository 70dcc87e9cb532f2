"""Run a few child processes together; stop them all on a signal or when one dies.

Each child starts in a session (and so a process group) of its own: a Ctrl-C in
the terminal reaches only the supervisor, which then stops the children in order:
SIGTERM to each child, a bounded wait, then SIGKILL to the child's whole process
group, which also takes any grandchild (Celery's pool processes) it left behind.
On Linux each child also gets SIGTERM if the supervisor dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

from rich.console import Console

_PR_SET_PDEATHSIG = 1
# A Ctrl-C under `uv run` or `make` reaches us twice at once: from the terminal and
# forwarded by the parent. Only a signal this much later asks to kill without waiting.
DUPLICATE_SIGNAL_WINDOW = 1.0


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Supervisor:
    specs: Sequence[ChildSpec]
    env: Mapping[str, str]
    console: Console
    stop_timeout: float = 10.0
    poll_interval: float = 0.2
    children: list[Child] = field(default_factory=list)
    _signal: int | None = None
    _signalled_at: float = 0.0
    _force: bool = False

    def run(
        self,
        *,
        ready: Callable[[], bool] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Start the children and supervise them; the exit status for the command.

        0 after a stop asked for by SIGINT/SIGTERM; non-zero when a child died by itself
        (or could not start). `on_ready` runs once, when `ready()` first answers true.
        """
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            try:
                for spec in self.specs:
                    self.children.append(self._spawn(spec))
            except OSError as exc:
                self.console.print(f"[red]could not start a process: {exc}[/red]")
                self.stop()
                return 1
            return self._supervise(ready, on_ready)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(
        self, ready: Callable[[], bool] | None, on_ready: Callable[[], None] | None
    ) -> int:
        announced = ready is None
        while True:
            if self._signal is not None:
                name = signal.Signals(self._signal).name
                self.console.print(f"\n{name} received: stopping SimLab…")
                self.stop()
                self.console.print("SimLab stopped.")
                return 0
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    self.console.print(
                        f"[red]{child.spec.name} (pid {child.pid}) exited with status {code}; "
                        "stopping the rest.[/red]"
                    )
                    self.stop()
                    return code if code > 0 else 1
            if not announced and ready is not None and ready():
                announced = True
                if on_ready is not None:
                    on_ready()
            time.sleep(self.poll_interval)

    def stop(self) -> None:
        """SIGTERM each child, wait up to `stop_timeout`, SIGKILL what is left."""
        for child in self.children:
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and not self._force:
            if all(child.process.poll() is not None for child in self.children):
                break
            time.sleep(0.05)
        for child in self.children:
            if child.process.poll() is None:
                self.console.print(
                    f"[yellow]{child.spec.name} (pid {child.pid}) did not stop in time; "
                    "killing it.[/yellow]"
                )
            # The whole group: the child if still there, and anything it left running.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            child.process.wait()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self._signal is None:
            self._signal, self._signalled_at = signum, now
        elif now - self._signalled_at >= DUPLICATE_SIGNAL_WINDOW:
            self._force = True  # a second Ctrl-C: stop waiting, kill

    def _spawn(self, spec: ChildSpec) -> Child:
        process = subprocess.Popen(  # noqa: S603 (our own argv, no shell)
            list(spec.argv),
            env=dict(self.env),
            start_new_session=True,
            preexec_fn=_die_with_parent() if sys.platform == "linux" else None,
        )
        self.console.print(f"started {spec.name} (pid {process.pid})")
        return Child(spec, process)


def _die_with_parent() -> Callable[[], None]:
    """A pre-exec hook: the child gets SIGTERM when this process dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return hook
