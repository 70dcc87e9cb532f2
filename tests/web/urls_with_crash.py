"""The real URL map plus one view that fails, to see how failures are answered."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request

from simlab.config.urls import handler404, handler500, urlpatterns

SECRET_DETAIL = "database password is hunter2"


@api_view(["GET"])
@permission_classes([AllowAny])
def crash(request: Request) -> HttpResponse:
    raise RuntimeError(SECRET_DETAIL)


def crash_plain(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_DETAIL)


urlpatterns = [
    path("api/v1/test-crash/", crash),
    path("api/v1/test-crash-plain/", crash_plain),
    *urlpatterns,
]
__all__ = ["handler404", "handler500", "urlpatterns"]
