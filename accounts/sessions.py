"""The session engine (settings.SESSION_ENGINE): Django's database sessions, with the read that
every request makes written once as SQL. Through the ORM, compiling that one statement cost more
than the database spent answering it (0.93 ms against 0.32 ms a read, bench/queue_pages.py's
data); everything else (saving, rotating, expiry, the async reads) is Django's own."""

import logging

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.core.exceptions import SuspiciousOperation
from django.db import connection
from django.utils import timezone

from config.sql import ModelRead

_SESSIONS = ModelRead(Session)


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        """As Django's: the unexpired session of this key, else None (and the key forgotten)."""
        try:
            now = connection.ops.adapt_datetimefield_value(timezone.now())  # as the ORM sends it
            found = _SESSIONS.rows('t."session_key" = %s AND t."expire_date" > %s', [self.session_key, now])
        except SuspiciousOperation as error:  # pragma: no cover (as Django's, which a key's checks raise)
            logging.getLogger(f"django.security.{error.__class__.__name__}").warning(str(error))
            found = []
        if found:
            return found[0]
        self._session_key = None
        return None
