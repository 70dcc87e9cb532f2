"""Deployment checks for the middleware that Django's own checks cannot see.

SimLab's middleware are subclasses of Django's (`simlab.platform.middleware.on_loop`), while
Django's security checks W001-W003 look for Django's exact dotted paths in MIDDLEWARE.
Those three are silenced in settings and checked here by class instead, as strictly.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.module_loading import import_string

_REQUIRED: list[tuple[type, str, str]] = [
    (SecurityMiddleware, "simlab.W001", "security headers, HSTS and the SSL redirect"),
    (XFrameOptionsMiddleware, "simlab.W002", "the X-Frame-Options header"),
    (CsrfViewMiddleware, "simlab.W003", "CSRF protection"),
]


@register(Tags.security, deploy=True)
def middleware_present(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    loaded = [import_string(path) for path in settings.MIDDLEWARE]
    return [
        Warning(f"No {required.__name__} (or subclass) in MIDDLEWARE: {purpose} are off.", id=id_)
        for required, id_, purpose in _REQUIRED
        if not any(isinstance(cls, type) and issubclass(cls, required) for cls in loaded)
    ]
