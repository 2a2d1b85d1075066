"""Accounts: users with email login, roles, API keys and the audit trail."""
