"""Every change to the registry, whichever door it comes through (API, admin, checker)."""

from simlab.registry.services.catalog import (
    ServiceSpec,
    service_create,
    service_delete,
    service_for_write,
    service_update,
)
from simlab.registry.services.checks import (
    Claim,
    Recorded,
    checker_changed,
    checker_claim,
    checker_edits_start,
    checker_lease_release,
    checker_lease_take,
    checker_record,
    checker_release,
    results_purge,
    service_test_connection,
    target_of,
)
from simlab.registry.services.notify import (
    Outgoing,
    notification_claim,
    notification_done,
    notification_send,
)

__all__ = [
    "Claim",
    "Outgoing",
    "Recorded",
    "ServiceSpec",
    "checker_changed",
    "checker_claim",
    "checker_edits_start",
    "checker_lease_release",
    "checker_lease_take",
    "checker_record",
    "checker_release",
    "notification_claim",
    "notification_done",
    "notification_send",
    "results_purge",
    "service_create",
    "service_delete",
    "service_for_write",
    "service_test_connection",
    "service_update",
    "target_of",
]
