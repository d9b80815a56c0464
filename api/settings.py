"""Settings read from the environment: DATABASE_URL plus SEGMENTS_* variables."""

import re
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.policy import Policy
from db.replicas import ReplicaPolicy
from rules.models import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTS_", extra="ignore")

    # Unset: an embedded PostgreSQL is started with its data under `data_dir`.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SEGMENTS_DATABASE_URL")
    )
    data_dir: Path = Path(".data")
    # Streaming replicas of DATABASE_URL, comma-separated: reads that need no transaction go
    # to them (db/pool.py); empty: everything on the primary.
    database_replica_urls: Annotated[list[str], NoDecode] = Field(
        default=[],
        validation_alias=AliasChoices("DATABASE_REPLICA_URLS", "SEGMENTS_DATABASE_REPLICA_URLS"),
    )
    # A replica further behind than this is out of rotation until it catches up.
    replica_max_lag_s: float = 5.0
    # How long a read sent with x-segments-lsn waits for a replica to replay that write
    # before it reads the primary instead.
    replica_wait_s: float = 0.25
    # How often replicas are checked (reachable, still standbys, lag).
    replica_check_s: float = 1.0

    pool_min_size: int = 2
    pool_max_size: int = 10
    # Every statement is bounded; a request can never hold a connection forever.
    statement_timeout_ms: int = 5000
    connect_timeout_s: float = 3.0
    # Connections member counts and pages may hold at once (default: half the pool), so
    # slow member work leaves the rest of the pool to light queries.
    member_connections: int | None = None
    # How long a resolved API token is trusted before it is looked up again (0: never
    # cached). Revocations reach every server at once through LISTEN/NOTIFY (api/auth.py).
    token_cache_seconds: float = 5.0

    # How often each serving process applies due scheduled change requests, in seconds
    # (at most 1, so a request is applied within 5 s of its time); 0 disables the loop.
    scheduler_interval: float = Field(default=1.0, ge=0, le=1)

    max_conditions: int = 50
    max_depth: int = 5
    max_targets: int = 15000
    # Included + excluded keys of one big (unbounded) segment (DESIGN §13).
    max_big_segment_targets: int = 10_000_000
    max_segments_per_project: int = 10000
    max_profiles_per_project: int = 10_000_000
    max_targeting_rules: int = 200  # per flag and environment

    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    # Fields of a query with its fragments expanded (GraphiQL's introspection selects ~230).
    max_query_fields: int = 2000
    max_body_bytes: int = 1024 * 1024
    # The compiled executor for queries (schema/fast_path.py); off: graphql-core runs all.
    fast_path: bool = True

    # Browser origins (scheme://host[:port]) allowed to call /graphql cross-origin, given
    # comma-separated; empty: no CORS headers at all.
    cors_origins: Annotated[list[str], NoDecode] = []

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("database_replica_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @property
    def replica_policy(self) -> ReplicaPolicy:
        return ReplicaPolicy(
            max_lag_s=self.replica_max_lag_s,
            wait_s=self.replica_wait_s,
            check_s=self.replica_check_s,
            connect_timeout_s=self.connect_timeout_s,
        )

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            # A browser sends Origin as scheme://host[:port]; anything else would never match.
            if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://admin.example.com")
        return origins

    @property
    def limits(self) -> Limits:
        return Limits(
            max_conditions=self.max_conditions,
            max_depth=self.max_depth,
            max_targets=self.max_targets,
        )

    @property
    def policy(self) -> Policy:
        return Policy(
            rules=self.limits,
            max_live_segments=self.max_segments_per_project,
            max_targeting_rules=self.max_targeting_rules,
            max_profiles=self.max_profiles_per_project,
            max_big_segment_targets=self.max_big_segment_targets,
        )
