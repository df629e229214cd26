"""Persistence: models, engine, the batching message writer and Alembic migrations."""
