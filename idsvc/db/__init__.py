"""Schema management: Alembic migrations, applied by ``idsvc db upgrade`` and on ``idsvc serve``."""
