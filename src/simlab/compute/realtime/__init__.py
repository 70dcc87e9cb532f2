"""Real-time computation for live clients.

`pool` (worker processes; imports no Django, since spawned workers import it) and `runs`
(checks, per-user limits and the frame stream shared by the WebSocket and NDJSON doors).
Import from the submodules: this package's `__init__` stays empty on purpose.
"""
