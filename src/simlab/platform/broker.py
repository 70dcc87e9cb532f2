"""The embedded Celery transport: kombu's SQLAlchemy transport on a SQLite file.

Changes from kombu's default:
- an idle worker polls every 0.1 s rather than every second (a queued simulation
  starts promptly);
- the file runs in WAL mode so the web process publishing and the workers consuming
  don't block each other;
- a publish is one INSERT on a pooled connection (kombu's own goes through an ORM
  session: a queue query, a unit-of-work flush and a commit, several times the cost
  of the request that publishes);
- `Producer.batch()` is supported: the messages published inside it are stored by one
  INSERT when it ends (kombu's Redis transport pipelines them the same way), which is
  how a worker fans a batch of simulations out into one task each.
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel, Transport
from kombu.utils.json import dumps
from sqlalchemy import event

ALIAS = "embedded"


class EmbeddedChannel(Channel):
    supports_batch_publish = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Queue rows are created once and never deleted by this transport.
        self._queue_ids: dict[str, int] = {}

    def _engine_from_config(self) -> Any:
        engine = super()._engine_from_config()

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine

    def _queue_id(self, queue: str) -> int:
        queue_id = self._queue_ids.get(queue)
        if queue_id is None:
            queue_id = int(self._get_or_create(queue).id)
            self.session.commit()  # end the session's read: nothing stays open on the file
            self._queue_ids[queue] = queue_id
        return queue_id

    # kombu passes `_publish_batch` in kwargs inside a batch (its stubs omit them).
    def _put(self, queue: Any, message: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        batch = kwargs.pop("_publish_batch", None)
        if batch is not None:
            batch.add(queue, message)
        else:
            self.insert_messages([(queue, message)])

    def insert_messages(self, messages: list[tuple[str, Any]]) -> None:
        """Store messages (queue name, kombu payload) in one transaction: one INSERT
        statement, run on the driver's connection from the engine's pool (the columns
        and values kombu's ORM insert writes: visible, version 1, no timestamp)."""
        if not messages:
            return
        rows = [(self._queue_id(queue), dumps(payload)) for queue, payload in messages]
        engine, _ = self._open()
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.executemany(self._insert_sql, rows)
            cursor.close()
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()  # back to the pool

    @cached_property
    def _insert_sql(self) -> str:
        table = self.message_cls.__table__
        return (
            f"INSERT INTO {table.name} (queue_id, payload, visible, version)"  # noqa: S608
            " VALUES (?, ?, 1, 1)"
        )

    def create_publish_batch(self, max_size: int) -> PublishBatch:
        return PublishBatch(self, max_size)


class PublishBatch:
    """Messages published inside `Producer.batch()`, stored when it flushes (the protocol
    kombu's Producer drives: publish, flush, discard, close)."""

    def __init__(self, channel: EmbeddedChannel, max_size: int) -> None:
        self.channel = channel
        self.max_size = max_size
        self._pending: list[tuple[str, Any]] = []
        self._closed = False

    def publish(self, message: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise RuntimeError("the publish batch is closed")
        result = self.channel.basic_publish(message, _publish_batch=self, **kwargs)
        if len(self._pending) >= self.max_size:
            self.flush()
        return result

    def add(self, queue: str, payload: Any) -> None:
        self._pending.append((queue, payload))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self.channel.insert_messages(pending)

    def discard(self) -> None:
        self._pending = []

    def close(self) -> None:
        self._pending = []
        self._closed = True


class EmbeddedTransport(Transport):
    Channel = EmbeddedChannel
    polling_interval = 0.1
    driver_type = "sql"
    driver_name = "sqlite"


def register() -> None:
    TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:EmbeddedTransport")


def embedded_broker_url(path: object) -> str:
    return f"{ALIAS}+sqlite:///{path}"


def queue_depths(app: Any, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue, on any transport: a passive declare's count (a
    queue the broker does not hold yet, such as an empty Redis list, has none waiting)."""
    depths: dict[str, int] = {}
    with app.connection_for_read() as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except connection.channel_errors:
                depths[queue] = 0
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return depths
