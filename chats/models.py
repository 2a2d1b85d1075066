"""Data of the chats app."""

from django.db import models  # noqa: F401
