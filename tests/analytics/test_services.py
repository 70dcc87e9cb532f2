"""Surrogate services end to end on the database: training (the worker's code path),
aliases, predictions with their cache, suggestions, refusals and audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from simlab.accounts.models import Role
from simlab.analytics import services
from simlab.analytics.models import ModelAlias, ModelVersion, SurrogateModel, VersionStatus
from simlab.audit.models import AuditLog
from simlab.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from simlab.simulations.models import Status
from tests.analytics.factories import SweepFactory, law, measured_sweep
from tests.factories import ProjectFactory, actor_for, member

pytestmark = pytest.mark.django_db(transaction=True)

INPUTS = ["sticking_probability", "n_particles"]


def _setup(role: Role = Role.MEMBER):  # type: ignore[no-untyped-def]
    user = member(role)
    project = ProjectFactory(organization=user.memberships.get().organization)
    return actor_for(user), project


def _queue(actor, project, sweep_ids, **extra):  # type: ignore[no-untyped-def]
    """A training request for the radius of gyration over INPUTS (`extra` overrides)."""
    return services.surrogate_train(
        actor,
        project_id=project.pk,
        name=extra.pop("name", "rg"),
        target=extra.pop("target", "radius_of_gyration"),
        inputs=INPUTS,
        sweep_ids=sweep_ids,
        **extra,
    )


def _train(actor, project, sweep, **extra):  # type: ignore[no-untyped-def]
    version = _queue(actor, project, [sweep.pk], **extra)
    assert version.status == VersionStatus.QUEUED
    services.version_train_run(version.pk)
    version.refresh_from_db()
    return version


def test_training_versions_aliases_and_audit() -> None:
    actor, project = _setup()
    sweep = measured_sweep(project)
    first = _train(actor, project, sweep)
    assert first.status == VersionStatus.READY, first.error_message
    assert first.number == 1
    assert first.kind in ("gp", "gbm")
    assert first.metrics["cv_r2"] > 0.9
    assert first.metrics["n_runs"] == 60
    assert len(first.fingerprint) == 64
    assert "scikit-learn" in first.library_versions
    assert first.artifact.name.endswith(".skops")
    # Re-delivered task: nothing happens twice.
    assert services.version_train_run(first.pk) == VersionStatus.READY

    second = _train(actor, project, sweep)
    assert second.number == 2
    assert second.fingerprint == first.fingerprint  # same runs, same data
    current = ModelAlias.objects.get(model=first.model, name="current")
    assert current.version_id == second.pk
    services.alias_set(actor, version_id=first.pk, alias="current")
    current.refresh_from_db()
    assert current.version_id == first.pk

    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions.count("surrogate.train") == 2
    assert actions.count("surrogate.trained") == 2
    assert actions.count("surrogate.alias") == 1


def test_predictions_single_batch_cached_and_audited() -> None:
    actor, project = _setup()
    version = _train(actor, project, measured_sweep(project))
    one = services.surrogate_predict(
        actor, model_id=version.model_id, points=[{"sticking_probability": 0.5, "n_particles": 500}]
    )
    (p,) = one["predictions"]
    assert p["low"] < p["mean"] < p["high"]
    assert p["mean"] == pytest.approx(law(0.5, 500), rel=0.05)
    assert one["cached"] is False
    batch = [{"sticking_probability": s, "n_particles": n} for s in (0.2, 0.9) for n in (200, 2000)]
    first = services.surrogate_predict(actor, model_id=version.model_id, points=batch)
    again = services.surrogate_predict(actor, model_id=version.model_id, points=batch)
    assert again["cached"] is True
    assert again["predictions"] == first["predictions"]
    truth = [law(q["sticking_probability"], q["n_particles"]) for q in batch]
    means = [q["mean"] for q in first["predictions"]]
    assert np.allclose(means, truth, rtol=0.08)
    assert not any(q["extrapolated"] for q in first["predictions"])
    assert AuditLog.objects.filter(action="surrogate.predict").count() == 3
    # The sweep's particle counts end at 3000: beyond them a prediction says so.
    (far,) = services.surrogate_predict(
        actor,
        model_id=version.model_id,
        points=[{"sticking_probability": 0.5, "n_particles": 10**5}],
    )["predictions"]
    assert far["extrapolated"] is True


def test_suggestions_are_distinct_grid_points_not_yet_run() -> None:
    actor, project = _setup()
    version = _train(actor, project, measured_sweep(project))
    axes = {"sticking_probability": [0.1, 0.2, 0.45, 0.7, 1.0], "n_particles": [100, 200, 5000]}
    answer = services.surrogate_suggest(actor, model_id=version.model_id, k=4, axes=axes)
    points = [tuple(s["point"].values()) for s in answer["suggestions"]]
    assert len(set(points)) == 4
    assert AuditLog.objects.filter(action="surrogate.suggest").count() == 1


def test_a_metric_the_inputs_do_not_predict_is_refused() -> None:
    actor, project = _setup()
    rng = np.random.default_rng(1)
    sweep = measured_sweep(project, metric=lambda p, n: float(rng.normal(10, 1)), noise=0)
    version = _train(actor, project, sweep)
    assert version.status == VersionStatus.REFUSED
    assert "below zero" in version.error_message
    assert not ModelAlias.objects.filter(model=version.model).exists()
    with pytest.raises(NotFound):
        services.surrogate_predict(
            actor, model_id=version.model_id, points=[{"sticking_probability": 1, "n_particles": 9}]
        )
    with pytest.raises(Conflict):
        services.alias_set(actor, version_id=version.pk, alias="current")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"inputs": []}, "inputs"),
        ({"inputs": ["a", "a"]}, "inputs"),
        ({"target": ""}, "target"),
        ({"level": 1.5}, "level"),
        ({"sweep_ids": [], "algorithm": ""}, "algorithm"),
        # Requests whose training could only be refused: refused now, naming the field.
        ({"target": "nope"}, "target"),
        ({"inputs": ["sticking_probability", "n-particles"]}, "inputs.1"),
        ({"sweep_ids": [], "algorithm": "foo"}, "algorithm"),
        ({"sweep_ids": [], "algorithm": "dla", "tag": "nothing-tagged"}, "tag"),
        # No finished eden runs in the project:
        ({"sweep_ids": [], "algorithm": "eden", "inputs": ["n_particles"]}, "algorithm"),
        ({"sweep_ids": "unfinished"}, "sweep_ids"),
    ],
)
def test_bad_training_requests_name_the_field(extra: dict, field: str) -> None:  # type: ignore[type-arg]
    actor, project = _setup()
    sweep = measured_sweep(project, seeds=1)
    if extra.get("sweep_ids") == "unfinished":
        extra = {"sweep_ids": [SweepFactory(project=project, status=Status.RUNNING).pk]}
    request = {
        "project_id": project.pk,
        "name": "m",
        "target": "radius_of_gyration",
        "inputs": INPUTS,
        "sweep_ids": [sweep.pk],
        **extra,
    }
    with pytest.raises(ValidationFailed) as caught:
        services.surrogate_train(actor, **request)
    assert field in caught.value.details
    assert not SurrogateModel.objects.exists()  # nothing left behind


def test_a_model_from_sweeps_records_their_algorithm_and_sweeps_must_share_one() -> None:
    actor, project = _setup()
    version = _train(actor, project, measured_sweep(project, seeds=1))
    assert version.model.algorithm == "dla"
    other = SweepFactory(project=project, algorithm="eden")
    with pytest.raises(ValidationFailed) as caught:
        _queue(actor, project, [version.source["sweep_ids"][0], other.pk], name="mixed")
    assert "sweep_ids" in caught.value.details


def test_tenancy_and_roles() -> None:
    actor, project = _setup()
    version = _train(actor, project, measured_sweep(project))
    stranger, foreign_project = _setup(Role.OWNER)
    point = [{"sticking_probability": 0.5, "n_particles": 500}]
    with pytest.raises(NotFound):
        services.surrogate_predict(stranger, model_id=version.model_id, points=point)
    with pytest.raises(NotFound):
        services.alias_set(stranger, version_id=version.pk, alias="x")
    with pytest.raises(NotFound):  # a foreign sweep is not a source either
        _queue(stranger, foreign_project, [version.source["sweep_ids"][0]], name="m")
    viewer = actor_for(member(Role.VIEWER, organization=project.organization))
    assert services.surrogate_predict(viewer, model_id=version.model_id, points=point)
    with pytest.raises(PermissionDenied):
        services.alias_set(viewer, version_id=version.pk, alias="x")


def test_a_redelivered_training_task_finishes_what_its_lost_worker_began() -> None:
    actor, project = _setup()
    sweep = measured_sweep(project, seeds=2)
    version = services.surrogate_train(
        actor,
        project_id=project.pk,
        name="rg",
        target="radius_of_gyration",
        inputs=INPUTS,
        sweep_ids=[sweep.pk],
    )
    # The first delivery claimed it, then its worker died (the row stays TRAINING).
    type(version).objects.filter(pk=version.pk).update(status="TRAINING", task_id="t-1")
    assert services.version_train_run(version.pk, task_id="t-2") == "TRAINING"  # not its own
    assert services.version_train_run(version.pk, task_id="t-1") == "READY"  # redelivery


def test_a_training_whose_task_was_never_sent_or_was_lost_is_sent_again(
    settings: Any,
) -> None:
    """The beat's `versions_republish`: a QUEUED version whose task never reached the
    broker (its publisher died after the commit) is sent after the short delay, one sent
    long ago and never taken after the long one; nothing else is sent twice."""
    actor, project = _setup()
    sweep = measured_sweep(project)
    made = [
        services.surrogate_train(
            actor, project_id=project.pk, name=f"m{i}", target="radius_of_gyration",
            inputs=INPUTS, sweep_ids=[sweep.pk],
        )
        for i in range(4)
    ]  # fmt: skip
    assert all(v.published_at for v in ModelVersion.objects.all())  # sent after the commit
    now = timezone.now()
    unsent, lost, waiting, trained = made
    ModelVersion.objects.filter(pk=unsent.pk).update(
        published_at=None, created_at=now - timedelta(seconds=31)
    )
    ModelVersion.objects.filter(pk=lost.pk).update(published_at=now - timedelta(seconds=901))
    ModelVersion.objects.filter(pk=waiting.pk).update(published_at=now - timedelta(seconds=899))
    ModelVersion.objects.filter(pk=trained.pk).update(
        published_at=None, created_at=now - timedelta(hours=1)
    )
    services.version_train_run(trained.pk)
    assert settings.SIMLAB_REPUBLISH_UNSENT_AFTER_S == 30
    assert settings.SIMLAB_REPUBLISH_AFTER_S == 900

    assert services.versions_republish(now=now) == 2
    sent = dict(ModelVersion.objects.values_list("pk", "published_at"))
    assert sent[unsent.pk] is not None
    assert sent[unsent.pk] >= now
    assert sent[lost.pk] >= now
    assert sent[waiting.pk] < now
    assert services.versions_republish(now=now) == 0  # just sent: not again
    # A duplicate message is harmless: the first task to claim the version trains it.
    assert services.version_train_run(unsent.pk, task_id="a") == VersionStatus.READY
    assert services.version_train_run(unsent.pk, task_id="b") == VersionStatus.READY
    assert (
        AuditLog.objects.filter(action="surrogate.trained", object_id=str(unsent.pk)).count() == 1
    )
