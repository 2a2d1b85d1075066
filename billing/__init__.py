"""Billing: the usage ledger, prices, quotas and rate limits, and usage statistics."""
