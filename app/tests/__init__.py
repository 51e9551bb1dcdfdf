"""Tests of the chat service, against real PostgreSQL and Redis (see conftest.py)."""
