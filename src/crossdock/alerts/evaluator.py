"""The alert evaluator: every ``every_seconds``, each workspace's rules are measured and
state changes are announced.

- ok -> firing sends ``alert.firing``; firing -> ok sends ``alert.resolved``; while it
  keeps firing, ``alert.firing`` is repeated at most every ``repeat`` of the rule.
- The state lives in ``alert_states`` (see :mod:`crossdock.alerts.store`) and is written
  *before* the notification goes out; ``notified_at`` is set only once every channel of
  the rule took it. A failed send is logged (without secrets) and tried again at the next
  evaluation with the same message id; a restart neither re-sends nor forgets.
- On PostgreSQL, where several hub processes may run, one evaluator at a time works
  (a session advisory lock); the others skip the round.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from sqlalchemy import Connection, select, text, update

from crossdock.alerts.notify import Notice, SendError, message_id, send
from crossdock.alerts.rules import Observation, gather_facts, observe, threshold_of
from crossdock.alerts.store import load_alert_configs
from crossdock.project.config import AlertRule, AlertsConfig
from crossdock.runtime.registry import Registry
from crossdock.security.crypto import SecretBox
from crossdock.security.redact import Redactor
from crossdock.store.database import Database
from crossdock.store.tables import alert_states

__all__ = ["AlertEvaluator", "Outcome"]

log = structlog.get_logger("crossdock.alerts")

#: The PostgreSQL advisory lock key that lets one evaluator work at a time.
LOCK_KEY = 0x616C65727473  # "alerts"
#: How often the evaluator looks for new or changed configurations, at most.
MAX_TICK = 30.0


@dataclass
class Outcome:
    """One notification of an evaluation: what was sent and how each channel fared
    (``"ok"`` or the plain reason it failed)."""

    notice: Notice
    channels: dict[str, str]

    @property
    def delivered(self) -> bool:
        """Whether every channel took it (a channel the rule names but the configuration
        lacks is skipped: there is nothing to retry)."""
        return all(v == "ok" or v.startswith("skipped") for v in self.channels.values())


@dataclass
class _Change:
    """A state row to write, and the notification it owes (if any)."""

    rule: AlertRule
    obs: Observation
    row: dict[str, Any]
    insert: bool
    notice_type: str | None
    due: float  # when the owed message became due (part of its stable id)
    since: float  # when the current state began


class AlertEvaluator:
    """Evaluates alert rules and sends their notifications (see the module docstring).

    ``registry_fn`` returns the current registry (connections and flows); ``box``
    decrypts the stored channel secrets.
    """

    def __init__(
        self,
        db: Database,
        registry_fn: Callable[[], Registry],
        box: SecretBox,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.registry_fn = registry_fn
        self.box = box
        self._http = http
        self._own_http = http is None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._configs: dict[str, tuple[float, AlertsConfig]] = {}
        self._last_run: dict[str, float] = {}
        self._delivered: dict[str, set[str]] = {}  # message id -> channels that took it

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate until ``stop`` is set (each workspace every ``every_seconds``)."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                # A round in progress (a slow subscriber, an SMTP timeout) does not hold up
                # a shutdown: it is cancelled, and what it owed is sent after the restart.
                evaluation = asyncio.ensure_future(self.evaluate_once(due_only=True))
                await asyncio.wait({evaluation, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not evaluation.done():
                    evaluation.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await evaluation
                    break
                if evaluation.exception() is not None:  # keep evaluating; the next may work
                    exc = evaluation.exception()
                    log.error("alerts_evaluation_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stopping), self._tick())
        finally:
            stopping.cancel()
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client this evaluator made."""
        if self._http is not None and self._own_http:
            await self._http.aclose()
            self._http = None

    def _tick(self) -> float:
        intervals = [cfg.every_seconds for _, cfg in self._configs.values()]
        return max(0.5, min([MAX_TICK, *intervals]))

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._own_http and self._http_loop is not loop:
            self._http = None  # made on another event loop: unusable here
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(follow_redirects=False, timeout=10.0)
            self._own_http = True
            self._http_loop = loop
        return self._http

    # -- one evaluation ----------------------------------------------------------------
    async def evaluate_once(
        self, now: float | None = None, *, workspace: str | None = None, due_only: bool = False
    ) -> list[Outcome]:
        """Evaluate every workspace's rules once (or ``workspace``'s); returns the
        notifications sent or attempted. ``due_only`` skips workspaces evaluated less
        than ``every_seconds`` ago."""
        now = time.time() if now is None else now
        lock = await self._lock()
        if lock is False:
            return []
        try:
            await self._refresh_configs()
            outcomes: list[Outcome] = []
            for ws_id, (_, cfg) in sorted(self._configs.items()):
                if workspace is not None and ws_id != workspace:
                    continue
                if due_only and now - self._last_run.get(ws_id, 0.0) < cfg.every_seconds:
                    continue
                self._last_run[ws_id] = now
                try:
                    outcomes += await self._evaluate_workspace(ws_id, cfg, now)
                except Exception:
                    log.exception("alerts_workspace_failed", workspace=ws_id)
            return outcomes
        finally:
            await self._unlock(lock)

    async def _refresh_configs(self) -> None:
        def read(conn: Connection) -> dict[str, float]:
            from crossdock.store.tables import alert_configs

            return {
                r.workspace: float(r.updated_at)
                for r in conn.execute(select(alert_configs.c.workspace, alert_configs.c.updated_at))
            }

        stamps = await self.db.read(read)
        for ws in list(self._configs):
            if ws not in stamps:
                del self._configs[ws]
        changed = [ws for ws, at in stamps.items() if self._configs.get(ws, (None,))[0] != at]
        for ws in changed:
            try:
                found = await self.db.read(
                    functools.partial(load_alert_configs, box=self.box, workspace=ws)
                )
            except Exception:  # a config that cannot be read: keep the others going
                log.exception("alerts_config_unreadable", workspace=ws)
                continue
            if ws in found:
                self._configs[ws] = found[ws]

    async def _evaluate_workspace(self, ws_id: str, cfg: AlertsConfig, now: float) -> list[Outcome]:
        if not cfg.rules:
            return []
        reg = self.registry_fn()
        space = reg.workspaces.get(ws_id)
        conns = {n: c.config for n, c in space.connections.items()} if space else {}
        flow_names = list(space.flows) if space else []
        facts = await self.db.read(
            functools.partial(
                gather_facts,
                workspace=ws_id,
                connection_configs=conns,
                flow_names=flow_names,
                rules=cfg.rules,
                now=now,
            )
        )
        states = await self.db.read(functools.partial(_states, workspace=ws_id))
        changes: list[_Change] = []
        for rule in cfg.rules:
            try:
                observed = observe(rule, facts)
            except Exception:  # one broken rule must not silence the others
                log.exception("alert_rule_failed", workspace=ws_id, rule=rule.name)
                continue
            seen: set[str] = set()
            for obs in observed:
                seen.add(obs.subject)
                changes.append(
                    self._decide(ws_id, rule, obs, states.get((rule.name, obs.subject)), now)
                )
            for (rname, subject), prev in states.items():
                owes = prev["state"] == "firing" or prev["notified_at"] is None
                if rname == rule.name and subject not in seen and owes:
                    # A connection or flow that went away: its alert resolves.
                    gone = Observation(
                        subject, None, False, f"'{subject}' is no longer measured by this rule."
                    )
                    changes.append(self._decide(ws_id, rule, gone, prev, now))
        writes = [c for c in changes if c.row]
        if writes:
            await self.db.write(functools.partial(_write_states, changes=writes))
        outcomes: list[Outcome] = []
        notified: list[tuple[str, str]] = []
        for c in changes:
            if c.notice_type is None:
                continue
            notice = self._notice(ws_id, cfg, c, now)
            outcome = await self._deliver(cfg, c.rule, notice)
            outcomes.append(outcome)
            if outcome.delivered:
                notified.append((c.rule.name, c.obs.subject))
        if notified:
            await self.db.write(
                functools.partial(_mark_notified, workspace=ws_id, keys=notified, at=now)
            )
        return outcomes

    def _decide(
        self,
        ws_id: str,
        rule: AlertRule,
        obs: Observation,
        prev: dict[str, Any] | None,
        now: float,
    ) -> _Change:
        key = {"workspace": ws_id, "rule": rule.name, "subject": obs.subject}

        def enter(state: str, notice: str | None, insert: bool = False) -> _Change:
            # A new state: ok rows that owe nothing are marked notified at once.
            row = {
                **key,
                "state": state,
                "value": obs.value,
                "since": now,
                "notified_at": None if notice else now,
            }
            return _Change(rule, obs, row, insert, notice, now, now)

        if prev is None:
            return enter("firing", "alert.firing", True) if obs.firing else enter("ok", None, True)
        since = float(prev["since"])
        value_row = {**key, "value": obs.value} if prev["value"] != obs.value else {}
        notified = prev["notified_at"]
        if prev["state"] == "firing":
            if not obs.firing:
                return enter("ok", "alert.resolved")
            if notified is None:  # the first notification is still owed
                return _Change(rule, obs, value_row, False, "alert.firing", since, since)
            if rule.repeat > 0 and now - notified >= rule.repeat:
                due = float(notified) + rule.repeat
                return _Change(rule, obs, value_row, False, "alert.firing", due, since)
            return _Change(rule, obs, value_row, False, None, 0.0, since)
        if obs.firing:
            return enter("firing", "alert.firing")
        if notified is None:  # the resolution is still owed
            return _Change(rule, obs, value_row, False, "alert.resolved", since, since)
        return _Change(rule, obs, value_row, False, None, 0.0, since)

    def _notice(self, ws_id: str, cfg: AlertsConfig, c: _Change, now: float) -> Notice:
        assert c.notice_type is not None
        console = None
        if cfg.console_url:
            console = cfg.console_url.rstrip("/") + f"/console/w/{ws_id}/"
        return Notice(
            type=c.notice_type,
            workspace=ws_id,
            rule=c.rule.name,
            when=c.rule.when,
            subject=c.obs.subject,
            value=c.obs.value,
            threshold=threshold_of(c.rule),
            summary=c.obs.summary,
            since=c.since,
            at=now,
            id=message_id(ws_id, c.rule.name, c.obs.subject, c.notice_type, c.due),
            console_url=console,
        )

    async def _deliver(self, cfg: AlertsConfig, rule: AlertRule, notice: Notice) -> Outcome:
        done = self._delivered.setdefault(notice.id, set())
        results: dict[str, str] = {}
        for name in rule.notify:
            channel = cfg.channels.get(name)
            if channel is None:
                log.warning("alert_channel_unknown", workspace=notice.workspace, channel=name)
                results[name] = "skipped: no such channel"
                done.add(name)  # nothing to retry
                continue
            if name in done:
                results[name] = "ok"
                continue
            try:
                await send(self._client(), channel, notice)
            except SendError as exc:
                reason = Redactor(cfg.secret_values()).value(str(exc))
                results[name] = reason
                log.warning(
                    "alert_notification_failed",
                    workspace=notice.workspace,
                    rule=notice.rule,
                    subject=notice.subject,
                    type=notice.type,
                    channel=name,
                    reason=reason,
                )
                continue
            except Exception as exc:  # a bug or an odd transport error: say what, not how
                results[name] = f"failed ({type(exc).__name__})"
                log.warning(
                    "alert_notification_failed",
                    workspace=notice.workspace,
                    rule=notice.rule,
                    channel=name,
                    reason=type(exc).__name__,
                )
                continue
            done.add(name)
            results[name] = "ok"
            log.info(
                "alert_notified",
                workspace=notice.workspace,
                rule=notice.rule,
                subject=notice.subject,
                type=notice.type,
                channel=name,
            )
        outcome = Outcome(notice, results)
        if outcome.delivered:
            self._delivered.pop(notice.id, None)
        return outcome

    # -- one evaluator at a time on PostgreSQL ------------------------------------------
    async def _lock(self) -> Any:
        if self.db.is_sqlite:
            return None

        def take() -> Any:
            conn = self.db.engine.connect()
            try:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
                if got.scalar():
                    conn.commit()
                    return conn
            except Exception:
                conn.close()
                raise
            conn.close()
            return False

        return await asyncio.to_thread(take)

    async def _unlock(self, lock: Any) -> None:
        if lock is None or lock is False:
            return

        def release() -> None:
            try:
                lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                lock.commit()
            finally:
                lock.close()

        await asyncio.to_thread(release)


def _states(conn: Connection, workspace: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (r.rule, r.subject): dict(r._mapping)
        for r in conn.execute(select(alert_states).where(alert_states.c.workspace == workspace))
    }


def _write_states(conn: Connection, changes: list[_Change]) -> None:
    for c in changes:
        row = c.row
        if c.insert:
            conn.execute(alert_states.insert().values(**row))
            continue
        conn.execute(
            update(alert_states)
            .where(
                alert_states.c.workspace == row["workspace"],
                alert_states.c.rule == row["rule"],
                alert_states.c.subject == row["subject"],
            )
            .values({k: v for k, v in row.items() if k not in ("workspace", "rule", "subject")})
        )


def _mark_notified(
    conn: Connection, workspace: str, keys: list[tuple[str, str]], at: float
) -> None:
    for rule, subject in keys:
        conn.execute(
            update(alert_states)
            .where(
                alert_states.c.workspace == workspace,
                alert_states.c.rule == rule,
                alert_states.c.subject == subject,
            )
            .values(notified_at=at)
        )
