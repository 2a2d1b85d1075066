"""Nexus: a self-hostable backend for AI chat products."""
