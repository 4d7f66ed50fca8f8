"""The schema, as SQLAlchemy Core tables. Every row carries its workspace.

Hot tables (events, deliveries) are narrow; bodies live in their own tables.
Times are UNIX epoch seconds (float) so that scheduling comparisons are cheap and the
same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)

connections = Table(
    "connections",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("connector", String(63), nullable=False),
    Column("settings", Text, nullable=False),  # JSON, secrets removed
    Column("secrets", Text, nullable=False),  # encrypted JSON (MultiFernet token)
    Column("source", String(300), nullable=True),  # file it was applied from, or "api"
    Column("updated_at", Float, nullable=False),
    Column("secrets_rotated_at", Float, nullable=True),  # when the credentials last changed
)

flows = Table(
    "flows",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("source_text", Text, nullable=False),  # the flow's YAML
    Column("file", String(300), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("updated_at", Float, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("connection", String(63), nullable=False),
    Column("type", String(200), nullable=False),
    Column("record_key", String(300), nullable=False),
    Column("version", String(100), nullable=True),
    Column("version_key", String(40), nullable=False),  # sortable form of version
    Column("dedup_key", String(300), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("origin", String(20), nullable=False, default="webhook"),  # webhook|poll|follow-up|api
    UniqueConstraint("workspace", "connection", "dedup_key"),
    Index(None, "workspace", "received_at"),
    Index(None, "workspace", "record_key"),
    Index(None, "correlation_id"),
)

event_bodies = Table(
    "event_bodies",
    metadata,
    Column("event_id", Id, primary_key=True),
    Column("headers", Text, nullable=False),
    Column("body", Text, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("flow", String(200), nullable=False),
    Column("record_key", String(300), nullable=False),
    Column("version_key", String(40), nullable=False),
    Column("ordered", Boolean, nullable=False, default=True),
    Column("generation", Integer, nullable=False, default=0),  # replays add generations
    Column("state", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("throttled", Integer, nullable=False, default=0),  # 429s: do not count as failures
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("outcome", String(16), nullable=True),  # last attempt's outcome
    Column("detail", Text, nullable=True),  # skip rule or last error, plain words
    Column("override_body", Text, nullable=True),  # edit-and-retry payload (JSON)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("event_id", "flow", "generation"),
    Index("ix_deliveries_lease", "state", "lease_expires_at"),
    Index("ix_deliveries_record", "workspace", "flow", "record_key", "version_key", "id"),
    Index(None, "workspace", "state", "updated_at"),
    Index(None, "workspace", "flow", "state"),
)

# Walked in claim order (priority first, then due time) so that a claim reads only the
# rows it takes, however long the backlog.
Index(
    "ix_deliveries_claim",
    deliveries.c.state,
    deliveries.c.priority.desc(),
    deliveries.c.next_attempt_at,
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("delivery_id", BigInteger, nullable=False),
    Column("connection", String(63), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("method", String(10), nullable=False),
    Column("url", Text, nullable=False),
    Column("status", Integer, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("request_headers", Text, nullable=True),
    Column("request_body", Text, nullable=True),
    Column("response_headers", Text, nullable=True),
    Column("response_body", Text, nullable=True),
    Index(None, "delivery_id"),
    Index(None, "correlation_id"),
    Index(None, "workspace", "started_at"),
    Index(None, "started_at"),
    Index(None, "workspace", "connection", "started_at"),
)

exceptions = Table(
    "exceptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("delivery_id", BigInteger, nullable=False, unique=True),
    Column("flow", String(200), nullable=False),
    Column("record_key", String(300), nullable=False),
    Column("category", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("fix", Text, nullable=False),
    Column("state", String(16), nullable=False),  # open | resolved
    Column("resolution", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("case_id", BigInteger, nullable=True),  # the case grouping it with its cause
    Index(None, "workspace", "state", "category"),
    Index(None, "case_id", "state"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("key", String(64), nullable=False),  # the cause: category + normalised reason
    Column("category", String(32), nullable=False),
    Column("connection", String(63), nullable=True),  # the system the cause is about
    Column("title", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("fix", Text, nullable=False),
    Column("hint", Text, nullable=True),  # JSON: what a one-click fix needs (lookup table, key)
    Column("state", String(16), nullable=False),  # open | closed
    Column("assignee", String(200), nullable=True),
    Column("resolution", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("closed_at", Float, nullable=True),
    Index(None, "workspace", "state", "updated_at"),
    Index(None, "workspace", "key", "state"),
)

case_notes = Table(
    "case_notes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("case_id", BigInteger, nullable=False),
    Column("author", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index(None, "case_id", "created_at"),
)

granted_credentials = Table(
    "granted_credentials",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("connection", String(63), primary_key=True),
    Column("secrets", Text, nullable=False),  # encrypted JSON, laid over the settings' secrets
    Column("scope", Text, nullable=True),  # what the vendor granted, as it said
    Column("granted_by", String(200), nullable=False),
    Column("updated_at", Float, nullable=False),
)

lookup_overrides = Table(
    "lookup_overrides",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("flow", String(200), primary_key=True),
    Column("table_name", String(200), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", Float, nullable=False),
)

cross_references = Table(
    "cross_references",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("source_connection", String(63), nullable=False),
    Column("source_key", String(300), nullable=False),
    Column("target_connection", String(63), nullable=False),
    Column("target_id", String(300), nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("workspace", "source_connection", "source_key", "target_connection"),
    Index(None, "workspace", "target_connection", "target_id"),
    Index(None, "workspace", "target_id"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("connection", String(63), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", Float, nullable=False),
)

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key", String(130), primary_key=True),  # workspace/connection: one per credential
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("paused_until", Float, nullable=False, default=0.0),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("workspace", String(63), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),  # argon2id
    Column("created_at", Float, nullable=False),
    Column("disabled_at", Float, nullable=True),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("workspace", String(63), primary_key=True),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the cookie's token
    Column("user_id", BigInteger, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index(None, "user_id"),
)

alert_configs = Table(
    "alert_configs",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("config", Text, nullable=False),  # JSON, secrets removed
    Column("secrets", Text, nullable=False),  # encrypted JSON
    Column("updated_at", Float, nullable=False),
)

alert_states = Table(
    "alert_states",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("rule", String(200), primary_key=True),
    Column("subject", String(300), primary_key=True),  # connection, flow or "" for the workspace
    Column("state", String(16), nullable=False),  # ok | firing
    Column("value", Float, nullable=True),
    Column("since", Float, nullable=False),
    Column("notified_at", Float, nullable=True),
)

ACTIVE_STATES = ("pending", "in_progress")
BLOCKING_STATES = ("pending", "in_progress", "exception")
TERMINAL_STATES = ("succeeded", "skipped")
