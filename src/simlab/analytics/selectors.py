"""Reads of surrogate models and their versions, scoped to what the actor may see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Q, QuerySet

from simlab.accounts.models import Role
from simlab.accounts.permissions import require_role, require_scope
from simlab.analytics.models import ModelAlias, ModelVersion, SurrogateModel, VersionStatus
from simlab.core.actor import Actor
from simlab.core.errors import NotFound
from simlab.projects.selectors import project_get
from simlab.simulations.models import Simulation, Status


def model_list(actor: Actor, *, project_id: int) -> QuerySet[SurrogateModel]:
    project_get(actor, project_id)  # 404 for a foreign project, not an empty list
    return SurrogateModel.objects.filter(project_id=project_id)


def model_get(actor: Actor, model_id: int, *, minimum: Role = Role.VIEWER) -> SurrogateModel:
    require_scope(actor, "read")
    model = SurrogateModel.objects.select_related("project").filter(pk=model_id).first()
    if model is None:
        raise NotFound("No such surrogate model.")
    require_role(actor, model.project.organization_id, minimum, what="surrogate model")
    return model


def version_get(actor: Actor, version_id: int, *, minimum: Role = Role.VIEWER) -> ModelVersion:
    require_scope(actor, "read")
    version = ModelVersion.objects.select_related("project", "model").filter(pk=version_id).first()
    if version is None:
        raise NotFound("No such model version.")
    require_role(actor, version.project.organization_id, minimum, what="model version")
    return version


def version_list(
    actor: Actor, *, project_id: int | None = None, model_id: int | None = None
) -> QuerySet[ModelVersion]:
    """A project's or a model's versions, newest first (keyset-paginated by id: the
    (project, -id) index and the (model, number) constraint serve both)."""
    if model_id is not None:
        model = model_get(actor, model_id)
        return ModelVersion.objects.filter(model_id=model.pk).order_by("-number")
    if project_id is None:
        raise NotFound("No such project.")
    project_get(actor, project_id)
    return ModelVersion.objects.filter(project_id=project_id).order_by("-id")


def version_by_alias(actor: Actor, model_id: int, alias: str) -> ModelVersion:
    model = model_get(actor, model_id)
    pointer = ModelAlias.objects.filter(model_id=model.pk, name=alias).first()
    if pointer is None:
        raise NotFound(f"Model {model.pk} has no alias '{alias}'.")
    return version_get(actor, pointer.version_id)


def aliases_of(versions: Sequence[ModelVersion]) -> dict[int, list[str]]:
    """The alias names pointing at each of `versions` (one query for a page)."""
    found: dict[int, list[str]] = {}
    rows = ModelAlias.objects.filter(version_id__in=[v.pk for v in versions]).order_by("name")
    for version_id, name in rows.values_list("version_id", "name"):
        found.setdefault(version_id, []).append(name)
    return found


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def training_runs(
    project_id: int, source: Mapping[str, Any], inputs: Sequence[str], target: str
) -> tuple[list[list[float]], list[float]]:
    """The succeeded runs of the source (sweeps, or an algorithm with an optional tag)
    whose parameters hold every input and whose metrics hold the target, as numbers."""
    x: list[list[float]] = []
    y: list[float] = []
    runs = _source_runs(project_id, source)
    for parameters, metrics in runs.order_by("id").values_list("parameters", "metrics"):
        row = [parameters.get(name) for name in inputs]
        value = metrics.get(target)
        if all(_numeric(v) for v in row) and _numeric(value):
            x.append([float(v) for v in row])
            y.append(float(value))
    return x, y


def _source_runs(project_id: int, source: Mapping[str, Any]) -> QuerySet[Simulation]:
    """The succeeded runs a training source selects."""
    runs = Simulation.objects.filter(project_id=project_id, status=Status.SUCCEEDED)
    if source.get("simulation_ids"):
        runs = runs.filter(pk__in=source["simulation_ids"])
    if source.get("sweep_ids"):
        runs = runs.filter(sweep_id__in=source["sweep_ids"])
    if source.get("algorithm"):
        runs = runs.filter(algorithm=source["algorithm"])
    if source.get("tag"):
        runs = runs.filter(tags__contains=f",{source['tag']},")
    return runs


def source_metric_names(project_id: int, source: Mapping[str, Any]) -> list[str] | None:
    """The numeric metrics of the source's latest succeeded run (what a surrogate can
    predict), None when the source has no succeeded run."""
    latest = _source_runs(project_id, source).order_by("-id").values_list("metrics").first()
    if latest is None:
        return None
    return sorted(name for name, value in (latest[0] or {}).items() if _numeric(value))


def next_version_number(model_id: int) -> int:
    last = (
        ModelVersion.objects.filter(model_id=model_id)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    return (last or 0) + 1


def ready(version: ModelVersion) -> bool:
    return version.status == VersionStatus.READY and bool(version.artifact)


def sweep_models(actor: Actor, *, project_id: int, sweep_id: int) -> list[SurrogateModel]:
    """The project's models with a version trained on the sweep, or started from it as an
    adaptive study (`ADAPTIVE_PREFIX`), newest first."""
    versions = version_list(actor, project_id=project_id).only("model_id", "source")[:1000]
    ids = {v.model_id for v in versions if sweep_id in (v.source.get("sweep_ids") or [])}
    prefix = adaptive_name(sweep_id, "")
    return list(
        SurrogateModel.objects.filter(project_id=project_id)
        .filter(Q(pk__in=ids) | Q(name__startswith=prefix))
        .order_by("-id")[:50]
    )


def adaptive_name(sweep_id: int, target: str) -> str:
    """The name of the model an adaptive study started from a sweep trains."""
    return f"adaptive from sweep {sweep_id}: {target}"


def latest_versions(models: Sequence[SurrogateModel]) -> dict[int, ModelVersion]:
    """Each model's newest version (one query for a page)."""
    latest: dict[int, ModelVersion] = {}
    rows = ModelVersion.objects.filter(model_id__in=[m.pk for m in models]).order_by("-number")
    for version in rows:
        latest.setdefault(version.model_id, version)
    return latest
