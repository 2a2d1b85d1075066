"""Data of the billing app."""

from django.db import models  # noqa: F401
