"""Publishing to the real broker: inline, or from the web server's publisher thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from simlab.simulations import dispatch

QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE

# Publishing stamps the rows it sent (Simulation.published_at).
pytestmark = pytest.mark.django_db(transaction=True)


def _drain(queue: str = QUEUE) -> list[tuple[str, Any]]:
    """Every message waiting in this run's queue, as (task name, first argument), taken."""
    from simlab.config.celery import app

    taken = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            args, _kwargs, _embed = message.decode()
            taken.append((message.headers["task"], args[0] if args else None))
    return taken


@pytest.fixture
def empty_queue() -> Iterator[None]:
    _drain()
    yield
    _drain()


@pytest.fixture
def started() -> Iterator[dispatch.Publisher]:
    publisher = dispatch.Publisher()
    publisher.start()
    yield publisher
    publisher.stop()


def test_runs_and_urgent_work_go_to_their_own_queues_only(empty_queue: None) -> None:
    """The urgent queue (reaper, rescued runs) has its own exchange and key: bound to the
    runs' default ones it received a copy of every run."""
    from simlab.config.celery import urgent_queue

    _drain(urgent_queue())
    dispatch._publish([[7]])
    dispatch.enqueue_urgent([8])
    assert _drain() == [(dispatch.RUN_TASK, 7)]
    assert _drain(urgent_queue()) == [(dispatch.RUN_TASK, 8)]


def test_a_single_is_one_run_task_and_a_batch_one_fan_out_task(empty_queue: None) -> None:
    dispatch._publish([[7]])
    dispatch._publish([[8, 9, 10]])
    assert _drain() == [(dispatch.RUN_TASK, 7), (dispatch.DISPATCH_TASK, [8, 9, 10])]


def test_the_publisher_sends_everything_it_was_given_before_a_flush(
    empty_queue: None, started: dispatch.Publisher
) -> None:
    groups = [[1], [2], [3, 4], [5]]
    for ids in groups:
        assert started.submit(ids)
    assert started.flush(timeout=10)
    taken = _drain()
    runs = sorted(arg for name, arg in taken if name == dispatch.RUN_TASK)
    fan_outs = [arg for name, arg in taken if name == dispatch.DISPATCH_TASK]
    assert runs == [1, 2, 5]
    assert fan_outs == [[3, 4]]


def test_a_stopped_publisher_takes_nothing_and_enqueue_publishes_inline(
    empty_queue: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = dispatch.Publisher()
    publisher.start()
    assert publisher.submit([11])
    publisher.stop()  # flushes first
    assert not publisher.running
    assert not publisher.submit([12])
    assert _drain() == [(dispatch.RUN_TASK, 11)]
    # No server in the process (a worker, the CLI): enqueue has published on return.
    monkeypatch.setattr(dispatch, "publisher", publisher)
    dispatch.enqueue([13])
    assert _drain() == [(dispatch.RUN_TASK, 13)]


def test_the_thread_runs_until_its_last_user_stops(empty_queue: None) -> None:
    publisher = dispatch.Publisher()
    publisher.start()
    publisher.start()  # a second server in the same process
    publisher.stop()
    assert publisher.running
    assert publisher.submit([21])
    publisher.stop()
    assert not publisher.running
    assert _drain() == [(dispatch.RUN_TASK, 21)]


def test_submissions_from_many_threads_are_each_published_once(
    empty_queue: None, started: dispatch.Publisher
) -> None:
    def submit(base: int) -> None:
        for i in range(25):
            started.submit([base + i])

    threads = [threading.Thread(target=submit, args=(1000 * t,)) for t in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert started.flush(timeout=20)
    runs = sorted(arg for name, arg in _drain() if name == dispatch.RUN_TASK)
    assert runs == sorted(1000 * t + i for t in range(1, 5) for i in range(25))


def test_the_web_server_runs_the_publisher(asgi_server: Any) -> None:
    from simlab.config.asgi import application, django_application

    assert dispatch.publisher.running
    for app in (application, django_application):
        assert dispatch.publisher_lifespan in app.lifespans  # type: ignore[attr-defined]


def _queued_rows(count: int, *, age_s: float, published: bool) -> list[int]:
    """QUEUED rows as a process leaves them: queued `age_s` ago, sent to the broker or
    (a web process killed between the commit and the publish) not."""
    from datetime import timedelta

    from django.utils import timezone

    from simlab.simulations.models import Simulation, Status
    from simlab.simulations.services import SimulationSpec, simulation_create_batch
    from tests.factories import ProjectFactory, actor_for, member

    user = member()
    project = ProjectFactory(organization=user.memberships.get().organization)
    ids = simulation_create_batch(
        actor_for(user), project_id=project.pk, specs=[SimulationSpec("dla")] * count, queue=False
    )
    then = timezone.now() - timedelta(seconds=age_s)
    Simulation.objects.filter(pk__in=ids).update(
        status=Status.QUEUED, queued_at=then, published_at=then if published else None
    )
    return ids


@pytest.mark.django_db(transaction=True)
def test_work_never_sent_is_sent_by_the_reaper_within_a_minute(empty_queue: None) -> None:
    """A batch committed by a web process that died before publishing waited 900 s; now a
    row without a publish stamp is sent after SIMLAB_REPUBLISH_UNSENT_AFTER_S (30 s), while
    rows that were sent and merely wait in a backlog are not sent twice."""
    from simlab.simulations.execution import reap
    from simlab.simulations.models import Simulation

    assert settings.SIMLAB_REPUBLISH_UNSENT_AFTER_S <= 30
    unsent = _queued_rows(3, age_s=settings.SIMLAB_REPUBLISH_UNSENT_AFTER_S + 1, published=False)
    waiting = _queued_rows(2, age_s=settings.SIMLAB_REPUBLISH_UNSENT_AFTER_S + 1, published=True)
    recent = _queued_rows(1, age_s=1, published=False)

    assert reap(requeue=True)["republished"] == 3
    assert dispatch.publisher.flush(timeout=10)  # when a served app's publisher runs
    assert _drain() == [(dispatch.DISPATCH_TASK, unsent)]
    stamped = Simulation.objects.filter(pk__in=unsent, published_at__isnull=False).count()
    assert stamped == 3
    assert reap(requeue=True)["republished"] == 0  # sent now: not again
    assert dispatch.publisher.flush(timeout=10)
    assert not set(waiting + recent) & {pk for _, ids in _drain() for pk in ids}


@pytest.mark.django_db(transaction=True)
def test_publishing_stamps_the_rows(empty_queue: None) -> None:
    from simlab.simulations.models import Simulation

    ids = _queued_rows(2, age_s=0, published=False)
    dispatch._publish([[ids[0]], [ids[1]]])
    assert Simulation.objects.filter(pk__in=ids, published_at__isnull=False).count() == 2
    assert sorted(arg for _, arg in _drain()) == ids
