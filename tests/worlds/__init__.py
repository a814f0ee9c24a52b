"""Shared test worlds: seeded databases, chain maps, firm pools, models and the helpers that build them."""
