"""Settings read from the environment: DATABASE_URL plus SEGMENTS_* variables."""

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rules.models import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTS_", extra="ignore")

    # Unset: an embedded PostgreSQL is started with its data under `data_dir`.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SEGMENTS_DATABASE_URL")
    )
    data_dir: Path = Path(".data")

    pool_min_size: int = 2
    pool_max_size: int = 10
    # Every statement is bounded; a request can never hold a connection forever.
    statement_timeout_ms: int = 5000
    connect_timeout_s: float = 3.0
    # How long a resolved API token is trusted before it is looked up again (0: never
    # cached). Revocations reach every server at once through LISTEN/NOTIFY (api/auth.py).
    token_cache_seconds: float = 5.0

    max_conditions: int = 50
    max_depth: int = 5
    max_targets: int = 15000
    max_segments_per_project: int = 10000
    max_profiles_per_project: int = 10_000_000

    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    # Fields of a query with its fragments expanded (GraphiQL's introspection selects ~230).
    max_query_fields: int = 2000
    max_body_bytes: int = 1024 * 1024
    # The compiled executor for queries (schema/fast_path.py); off: graphql-core runs all.
    fast_path: bool = True

    @property
    def limits(self) -> Limits:
        return Limits(
            max_conditions=self.max_conditions,
            max_depth=self.max_depth,
            max_targets=self.max_targets,
        )
