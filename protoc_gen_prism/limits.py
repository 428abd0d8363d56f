"""What the backends accept: the bounds every option value, and every value derived from one, is held to.

Each bound names where it comes from; the model builder checks what is written, the planner checks
what it derives for the backend it chose (docs/planner.md, "Limits").
"""

from __future__ import annotations

INT64_MAX = 2**63 - 1
"""The largest 64-bit signed integer: NATS durations and sizes, Kafka LONG configs, the plan file's numbers."""
INT32_MAX = 2**31 - 1
"""The largest value of a Kafka INT config such as max.message.bytes."""
MAX_IDENTIFIER_BYTES = 63
"""Postgres' identifier limit (NAMEDATALEN - 1): longer names are silently truncated, so two could collide."""
NATS_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
"""The largest max_payload a NATS server can be configured with: no bigger message can be published."""
SQL_MAX_RETENTION_DAYS = 700_000
"""Partitions older than retention_days are dropped by date: today minus retention_days must be a date
after year 1, which 700,000 days keeps true for any year after 1917."""

COUNT_RANGES: dict[str, tuple[int, int]] = {
    "estimated_write_rps": (0, INT64_MAX),
    "estimated_read_rps": (0, INT64_MAX),
    "retention_days": (0, INT64_MAX),
    "estimated_message_bytes": (1, INT64_MAX),
    "consumer_parallelism": (0, INT64_MAX),
    # Expiry is stored in epoch milliseconds, a 64-bit integer: now plus the TTL must fit.
    "ttl_seconds": (1, INT64_MAX // 1000 - 4_102_444_800),
}
"""What each numeric message option may hold before the planner sees which backend it lands on."""
