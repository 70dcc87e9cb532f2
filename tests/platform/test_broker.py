"""The embedded broker: a publish is one INSERT; `Producer.batch()` stores many in one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from simlab.platform.broker import embedded_broker_url, register

register()


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[Connection]:
    with Connection(embedded_broker_url(tmp_path / "broker.sqlite3")) as conn:
        yield conn


def _drain(connection: Connection, queue: Queue) -> list[object]:
    received: list[object] = []
    with connection.Consumer(
        queue, callbacks=[lambda body, msg: (received.append(body), msg.ack())]
    ):
        while True:
            try:
                connection.drain_events(timeout=0.3)
            except TimeoutError:
                return received


def _stored(connection: Connection) -> int:
    channel = connection.default_channel
    return channel.session.query(channel.message_cls).count()


def test_publish_is_consumed_as_kombu_stored_it(connection: Connection) -> None:
    queue = Queue("work", Exchange("work"), routing_key="work")
    producer = connection.Producer()
    producer.publish({"n": 1}, exchange=queue.exchange, routing_key="work", declare=[queue])
    producer.publish({"n": 2}, exchange=queue.exchange, routing_key="work", declare=[queue])
    assert _drain(connection, queue) == [{"n": 1}, {"n": 2}]


def test_a_batch_is_stored_when_it_ends_and_dropped_on_error(connection: Connection) -> None:
    queue = Queue("work", Exchange("work"), routing_key="work")
    producer = connection.Producer()
    producer.declare = [queue]
    queue(connection.default_channel).declare()
    with producer.batch(max_size=100):
        for n in range(5):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="work")
        assert _stored(connection) == 0  # nothing written until the batch ends
    assert _stored(connection) == 5

    def failing_batch() -> None:
        with producer.batch(max_size=100):
            producer.publish({"n": 99}, exchange=queue.exchange, routing_key="work")
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError):
        failing_batch()
    assert _stored(connection) == 5
    assert _drain(connection, queue) == [{"n": n} for n in range(5)]


def test_a_batch_flushes_every_max_size_messages(connection: Connection) -> None:
    queue = Queue("work", Exchange("work"), routing_key="work")
    queue(connection.default_channel).declare()
    producer = connection.Producer()
    with producer.batch(max_size=2):
        for n in range(3):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="work")
        assert _stored(connection) == 2
    assert _stored(connection) == 3
