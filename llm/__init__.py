"""LLM providers and models, one streaming adapter per wire protocol, routing and the fake upstream."""
