"""The limits the use cases enforce, as configured (api/settings.py builds one)."""

from dataclasses import dataclass, field

from rules.models import Limits


@dataclass(frozen=True)
class Policy:
    rules: Limits = field(default_factory=Limits)
    max_live_segments: int = 10_000
    max_targeting_rules: int = 200  # per flag and environment
    max_profiles: int = 10_000_000  # stored per project
    max_big_segment_targets: int = 10_000_000  # included + excluded of one big segment
