"""Secrets: placeholders, the store, rendering, detection rules, redaction, scanning."""
