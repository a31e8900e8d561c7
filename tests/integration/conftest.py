"""Integration tests share the session sandbox defined in tests/conftest.py."""
