"""The mail backend of a production server with no SMTP server set (EMAIL_HOST unset).

Django's console backend would print every message into the log, password-reset links with
them, and a reset link signs in as its owner: anyone who reads the logs could take any
account. In production nothing is sent and nothing printed; each attempt fails loudly instead,
naming the setting to fix, and `manage.py check --deploy` reports it before (nexus.E001).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)

MESSAGE = (
    "No mail server is configured: set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, "
    "EMAIL_HOST_PASSWORD) to send mail. Nothing was sent or printed."
)


class UnconfiguredEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        # Only the count: a message's body may hold a link that signs someone in.
        logger.error("%d mail(s) not sent. %s", len(email_messages), MESSAGE)
        if self.fail_silently:
            return 0
        raise ImproperlyConfigured(MESSAGE)
