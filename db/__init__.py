"""Database access: asyncpg pool, raw SQL per entity, DataLoaders, migrations."""
