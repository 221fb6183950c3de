"""Test helpers shared across the suite (not fixtures: those live in tests/conftest.py)."""
