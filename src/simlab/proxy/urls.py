"""The proxy's URL space: part of the site's map, and the whole map of its own handler
(`simlab.config.asgi.LoopOnlyHandler`), which resolves nothing else."""

from django.urls import URLPattern, URLResolver, include, path, re_path

from simlab.proxy.views import compute_proxy

# Under /api/v1/: async proxy to the compute service (authenticated here, signed, streamed).
api_v1_patterns: list[URLPattern | URLResolver] = [
    re_path(r"^compute/(?P<path>.*)$", compute_proxy, name="compute-proxy"),
]

urlpatterns = [path("api/v1/", include(api_v1_patterns))]
