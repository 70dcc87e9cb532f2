"""Data rights: exports of a person or an organisation, erasure of a person, retention."""

from simlab.privacy.services.erasure import ErasurePlan, pseudonym_for, user_erase
from simlab.privacy.services.export import organization_export, user_export
from simlab.privacy.services.retention import KINDS as RETENTION_KINDS
from simlab.privacy.services.retention import MAX_DAYS as MAX_RETENTION_DAYS
from simlab.privacy.services.retention import purge_expired, retention_set

__all__ = [
    "MAX_RETENTION_DAYS",
    "RETENTION_KINDS",
    "ErasurePlan",
    "organization_export",
    "pseudonym_for",
    "purge_expired",
    "retention_set",
    "user_erase",
    "user_export",
]
