"""URL map of the Django side (everything but /compute and /ws)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
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
from simlab.core.ids import ObjectIdConverter
from simlab.projects.api import ProjectViewSet
from simlab.proxy.views import compute_proxy
from simlab.simulations.api import (
    AlgorithmViewSet,
    ProjectSimulationViewSet,
    ProjectSweepViewSet,
    SimulationViewSet,
    SweepViewSet,
)
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

project_simulations = ProjectSimulationViewSet.as_view({"get": "list", "post": "create"})
project_simulation_batch = ProjectSimulationViewSet.as_view({"post": "batch"})
project_sweeps = ProjectSweepViewSet.as_view({"get": "list", "post": "create"})
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
    *result_files,
    # Async proxy to the compute service (FastAPI): authenticated here, signed, streamed.
    # Served by simlab.platform.request_cycle.ProxyHandler (the whole prefix to this view).
    re_path(r"^compute/(?P<path>.*)$", compute_proxy, name="compute-proxy"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", include("simlab.web.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    re_path(r"^health/?$", views.health, name="health"),
    re_path(r"^ready/?$", views.ready, name="ready"),
]

handler403 = "simlab.web.views.system.forbidden"
handler404 = "simlab.web.views.system.not_found"
handler500 = "simlab.web.views.system.server_error"
