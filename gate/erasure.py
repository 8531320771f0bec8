"""Erasing a person (152-FZ, `gate user forget`): what identifies them goes, what belongs to
their organisation stays.

Gone: the e-mail and password (the users row stays as a tombstone named "user#<id>", disabled,
so the organisation's support requests keep an author), login sessions, password-reset and
invitation links, API tokens, the second factor, personal feed keys and the digest subscription, the comments
of their feedback on articles (the votes stay, counted), the mails addressed to them (unsent ones are dropped, sent ones
lose their body), the phone number of their support requests, and the e-mail and addresses in
the audit log (gate.audit.forget). Kept: their organisation's support requests (subject,
description, attachments: the organisation's case history, which the vendor must keep to
answer it) and the audit log's actions under the pseudonym.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from gate import audit
from gate.clock import utcnow
from gate.db import (api_tokens, digest_subscriptions, feed_keys, feedback, invitations, outbox,
                     password_resets, sessions, support_requests, totp_factors, totp_recovery,
                     users)


def forget(conn, row) -> str:
    """Erases the person of `row` (a users row) in the caller's transaction; returns the
    pseudonym they keep in the audit log."""
    name = audit.pseudonym(row.id)
    for table in (sessions, password_resets, invitations, api_tokens, feed_keys,
                  digest_subscriptions, totp_factors, totp_recovery):
        conn.execute(table.delete().where(table.c.user_id == row.id))
    conn.execute(feedback.update().where(feedback.c.user_id == row.id).values(comment=None))
    requests = sa.select(support_requests.c.id).where(support_requests.c.user_id == row.id)
    conn.execute(outbox.delete().where(outbox.c.recipient == row.email, outbox.c.sent_at.is_(None)))
    conn.execute(outbox.update().where(
        outbox.c.sent_at.is_not(None),
        sa.or_(outbox.c.recipient == row.email, outbox.c.request_id.in_(requests)))
        .values(body=b"", recipient=name))
    conn.execute(support_requests.update().where(support_requests.c.user_id == row.id)
                 .values(phone=""))
    conn.execute(users.update().where(users.c.id == row.id).values(
        email=name, password_hash="", disabled=True, is_admin=False, last_login_at=None,
        tokens_valid_after=int(time.time()) + 1, erased_at=utcnow()))
    audit.forget(conn, row.id, row.email)
    return name
