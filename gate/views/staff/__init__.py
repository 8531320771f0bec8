"""The staff console under /staff/: organisations, people, invitations, API tokens, support
requests, the audit log and usage per organisation, for staff only (`guard` runs before everything else)."""

from gate.views.staff import orgs, people, records, usage  # noqa: F401  (their routes)
from gate.views.staff.common import bp, guard

__all__ = ["bp", "guard"]
