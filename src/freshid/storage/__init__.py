"""Persistence: SQLAlchemy Core tables, the database handle, repositories and Alembic migrations."""
