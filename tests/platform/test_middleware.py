"""The page chain is Django's own middleware, so Django's own deployment checks see it."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

SECURITY_MIDDLEWARE_CHECKS = {"security.W001", "security.W002", "security.W003"}


def test_no_security_check_is_silenced() -> None:
    assert not SECURITY_MIDDLEWARE_CHECKS & set(settings.SILENCED_SYSTEM_CHECKS)


def test_django_deploy_checks_find_the_security_middleware() -> None:
    messages = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert not SECURITY_MIDDLEWARE_CHECKS & {message.id for message in messages}


def test_the_page_chain_uses_django_and_whitenoise_classes() -> None:
    own = [path for path in settings.MIDDLEWARE if path.startswith("simlab.")]
    assert own == [
        "simlab.platform.middleware.ErrorEnvelopeMiddleware",
        "simlab.platform.middleware.RouteLabelMiddleware",
    ]
