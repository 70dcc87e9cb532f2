"""URL map of the Django side (everything but /compute and /ws)."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from simlab.accounts.api import (
    ApiKeyViewSet,
    OrganizationViewSet,
    TokenObtainView,
    TokenRefreshViewV1,
    me,
)
from simlab.analytics.api import ModelVersionViewSet, ProjectSurrogateViewSet, SurrogateViewSet
from simlab.core.ids import ObjectIdConverter
from simlab.privacy import api as privacy_api
from simlab.projects.api import ProjectViewSet
from simlab.proxy.views import compute_proxy
from simlab.registry import ga4gh as registry_ga4gh
from simlab.registry.api import ServiceViewSet as RegistryServiceViewSet
from simlab.simulations.api import (
    AlgorithmViewSet,
    ProjectSimulationViewSet,
    ProjectSweepViewSet,
    SimulationViewSet,
    SweepViewSet,
)
from simlab.usage import api as usage_api
from simlab.web.views import system as views

# Every object id in a URL is `<id:...>` (simlab.core.ids): other spellings are a 404.
register_converter(ObjectIdConverter, "id")


class ApiRouter(DefaultRouter):
    """Path converters, not regexes (viewsets name theirs in `lookup_value_converter`), and
    no `.json` suffix routes: JSON is the API's only format."""

    include_format_suffixes = False


router = ApiRouter(trailing_slash=True, use_regex_path=False)
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("projects", ProjectViewSet, basename="project")
router.register("simulations", SimulationViewSet, basename="simulation")
router.register("sweeps", SweepViewSet, basename="sweep")
router.register("algorithms", AlgorithmViewSet, basename="algorithm")
router.register("registry/services", RegistryServiceViewSet, basename="registry-service")
router.register("surrogates", SurrogateViewSet, basename="surrogate")
router.register("surrogate-versions", ModelVersionViewSet, basename="surrogate-version")

project_simulations = ProjectSimulationViewSet.as_view({"get": "list", "post": "create"})
project_simulation_batch = ProjectSimulationViewSet.as_view({"post": "batch"})
project_sweeps = ProjectSweepViewSet.as_view({"get": "list", "post": "create"})
project_surrogates = ProjectSurrogateViewSet.as_view({"get": "list", "post": "create"})
project_surrogate_versions = ProjectSurrogateViewSet.as_view({"get": "versions"})
# Result files keep their extension last (no trailing slash), so saved names make sense.
result_files = [
    path(
        f"simulations/<id:pk>/{filename}",
        SimulationViewSet.as_view({"get": handler}),
        name=f"simulation-{name}",
    )
    for filename, handler, name in [
        ("result.npz", "result_npz", "result-npz"),
        ("picture.png", "result_png", "result-png"),
        ("metrics.json", "result_metrics", "result-metrics"),
        ("tiles.json", "tiles", "tiles"),
        ("tiles/<str:z>/<str:x>/<str:y>.png", "tile", "tile"),
    ]
]

api_v1: list[URLPattern | URLResolver] = [
    path("auth/token/", TokenObtainView.as_view(), name="token_obtain"),
    path("auth/token/refresh/", TokenRefreshViewV1.as_view(), name="token_refresh"),
    path("me/", me, name="me"),
    path("me/export", privacy_api.me_export, name="me-export"),
    path(
        "organizations/<id:pk>/export",
        privacy_api.organization_export,
        name="organization-export",
    ),
    path(
        "organizations/<id:pk>/retention/",
        privacy_api.organization_retention,
        name="organization-retention",
    ),
    path("organizations/<id:pk>/usage/", usage_api.organization_usage, name="organization-usage"),
    path("users/<id:pk>/erase/", privacy_api.user_erase, name="user-erase"),
    path(
        "projects/<id:project_pk>/simulations/",
        project_simulations,
        name="project-simulations",
    ),
    path(
        "projects/<id:project_pk>/simulations/batch/",
        project_simulation_batch,
        name="project-simulations-batch",
    ),
    path("projects/<id:project_pk>/sweeps/", project_sweeps, name="project-sweeps"),
    path("projects/<id:project_pk>/surrogates/", project_surrogates, name="project-surrogates"),
    path(
        "projects/<id:project_pk>/surrogate-versions/",
        project_surrogate_versions,
        name="project-surrogate-versions",
    ),
    *result_files,
    # Async proxy to the compute service (FastAPI): authenticated here, signed, streamed.
    # Served by simlab.platform.request_cycle.ProxyHandler (the whole prefix to this view).
    re_path(r"^compute/(?P<path>.*)$", compute_proxy, name="compute-proxy"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include(router.urls)),
]

# The GA4GH Service Registry API (read side) over the registry's rows.
ga4gh_registry: list[URLPattern | URLResolver] = [
    path("services", registry_ga4gh.services, name="ga4gh-registry-services"),
    path("services/types", registry_ga4gh.service_types, name="ga4gh-registry-types"),
    path(
        "services/<str:service_id>",
        registry_ga4gh.service_detail,
        name="ga4gh-registry-service",
    ),
    path("service-info", registry_ga4gh.service_info, name="ga4gh-registry-service-info"),
]

urlpatterns = [
    path("", include("simlab.web.urls")),
    # Sign-in, sign-up (by invitation), e-mail confirmation, password reset, two-factor.
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("simlab.wes.urls")),
    path("ga4gh/registry/v1/", include(ga4gh_registry)),
    re_path(r"^health/?$", views.health, name="health"),
    re_path(r"^ready/?$", views.ready, name="ready"),
    path("metrics", views.metrics, name="metrics"),
]

handler403 = "simlab.web.views.system.forbidden"
handler404 = "simlab.web.views.system.not_found"
handler500 = "simlab.web.views.system.server_error"
