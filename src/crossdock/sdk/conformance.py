"""The conformance suite every connector runs.

Subclass :class:`ConnectorConformance` in a test module, set ``connector_class`` and
implement :meth:`~ConnectorConformance.make_harness` (a connection pointed at the
vendor's emulator); pytest then collects the shared tests::

    class TestShopifyConformance(ConnectorConformance):
        connector_class = ShopifyConnector

        async def make_harness(self, stack):
            ...
            return ConformanceHarness(connector=..., settings=..., ...)

The suite checks what every connector promises: its settings are valid and its secrets
typed as secrets and kept out of the audit trail; it names its API version and sunset;
every stream's output maps to valid canonical records and its cursor advances; writes
are idempotent (the same write twice makes one effect at the vendor); a tampered or
unsigned webhook is rejected and a valid one parses to canonical events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import SecretStr

from crossdock.sdk.actions import ActionContext, run_action
from crossdock.sdk.client import recording
from crossdock.sdk.connector import Connector
from crossdock.sdk.errors import SignatureRejected
from crossdock.sdk.events import IncomingEvent, canonical_model_for
from crossdock.sdk.settings import secret_values
from crossdock.sdk.streams import Cursor

__all__ = ["ConformanceHarness", "ConnectorConformance", "WriteCase"]

_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "access_key")


@dataclass
class WriteCase:
    """One write to check for idempotency: the action, its context and a way to count
    its effects at the emulator."""

    action: str
    context: ActionContext
    effects: Callable[[], int]
    prepare: Callable[[], Awaitable[None]] | None = None


@dataclass
class ConformanceHarness:
    """A connection wired to its emulator, and what the suite needs to drive it."""

    connector: Connector
    settings: Mapping[str, Any]
    webhook: Callable[[], tuple[dict[str, str], bytes]] | None = None
    """A valid, signed webhook delivery (headers lower-case, raw body)."""
    seed: Callable[[str], Awaitable[None]] | None = None
    """Make the vendor hold data for the named stream."""
    touch: Callable[[str], Awaitable[None]] | None = None
    """Make one more change visible to the named stream."""
    writes: list[WriteCase] = field(default_factory=list)


def _check_record(ev: IncomingEvent) -> None:
    model = canonical_model_for(ev.type)
    assert model is not None, f"event type {ev.type!r} has no canonical model"
    model.model_validate(ev.record)
    assert ev.record_key, f"event {ev.type} has an empty record key"


class ConnectorConformance:
    """Shared tests; see the module docstring."""

    connector_class: ClassVar[type[Connector]]

    async def make_harness(self, stack: contextlib.AsyncExitStack) -> ConformanceHarness:
        """A harness for one test (emulator + connection); clean up via ``stack``."""
        raise NotImplementedError

    def _run(self, test: Callable[[ConformanceHarness], Awaitable[None]]) -> None:
        async def main() -> None:
            async with contextlib.AsyncExitStack() as stack:
                h = await self.make_harness(stack)
                await test(h)

        asyncio.run(main())

    # -- declarations -----------------------------------------------------------------

    def test_connector_declares_name_api_version_and_sunset(self) -> None:
        cls = self.connector_class
        assert cls.name and cls.title and cls.kind
        assert cls.api_version, "a connector names the vendor API version it speaks"
        assert cls.emulator, "a connector ships an emulator"
        # The sunset may be unannounced (None) but then the warning must stay quiet.
        if cls.api_sunset is None:
            assert cls.sunset_warning() is None

    def test_settings_are_valid_and_secrets_typed_as_secrets(self) -> None:
        async def test(h: ConformanceHarness) -> None:
            model = self.connector_class.settings_model
            settings = model.model_validate(dict(h.settings))
            for name, info in model.model_fields.items():
                if any(w in name.lower() for w in _SECRET_WORDS):
                    assert info.annotation in (SecretStr, SecretStr | None), (
                        f"setting {name!r} looks like a credential but is not a SecretStr"
                    )
            shown = repr(settings) + str(settings.model_dump())
            for secret in secret_values(settings):
                assert secret not in shown, "a secret is visible in the settings' repr/dump"

        self._run(test)

    # -- streams ----------------------------------------------------------------------

    def test_stream_output_maps_to_valid_canonical_records(self) -> None:
        async def test(h: ConformanceHarness) -> None:
            for name, stream in h.connector.streams.items():
                if h.seed is not None:
                    await h.seed(name)
                cursor = Cursor(stream.initial_cursor, lag_seconds=stream.lag_seconds)
                events = [ev async for ev in stream.read(cursor)]
                assert events, f"stream {name!r} yielded nothing after seeding"
                for ev in events:
                    assert ev.type in stream.event_types, (ev.type, stream.event_types)
                    _check_record(ev)

        self._run(test)

    def test_stream_cursor_advances_and_rereads_nothing_new(self) -> None:
        async def test(h: ConformanceHarness) -> None:
            for name, stream in h.connector.streams.items():
                if h.seed is not None:
                    await h.seed(name)
                cursor = Cursor(stream.initial_cursor, lag_seconds=stream.lag_seconds)
                first = [ev async for ev in stream.read(cursor)]
                assert cursor.value != stream.initial_cursor, f"stream {name!r}: cursor stuck"
                again = [ev async for ev in stream.read(cursor)]
                seen = {(e.record_key, e.version) for e in first}
                new = [e for e in again if (e.record_key, e.version) not in seen]
                assert not new, f"stream {name!r} re-read as new: {new[:3]}"
                if h.touch is not None:
                    before = cursor.value
                    await h.touch(name)
                    later = [ev async for ev in stream.read(cursor)]
                    fresh = [e for e in later if (e.record_key, e.version) not in seen]
                    assert fresh, f"stream {name!r} missed a change after the cursor"
                    assert cursor.value >= before

        self._run(test)

    # -- writes -----------------------------------------------------------------------

    def test_writes_are_idempotent(self) -> None:
        async def test(h: ConformanceHarness) -> None:
            assert h.writes or not h.connector.actions, "give at least one WriteCase"
            for case in h.writes:
                if case.prepare is not None:
                    await case.prepare()
                action = h.connector.actions[case.action]
                before = case.effects()
                first, r1 = await run_action(action, case.context)
                assert first.outcome.value == "success", (case.action, first)
                second, r2 = await run_action(action, case.context)
                assert second.outcome.value == "success", (case.action, second)
                assert case.effects() == before + 1, (
                    f"{case.action}: the same write twice made {case.effects() - before} effects"
                )
                if r1 is not None and r2 is not None and r1.external_id:
                    assert r1.external_id == r2.external_id

        self._run(test)

    def test_secrets_stay_out_of_the_audit_trail(self) -> None:
        async def test(h: ConformanceHarness) -> None:
            secrets = secret_values(h.connector.settings)
            with recording() as rec:
                for case in h.writes[:1]:
                    if case.prepare is not None:
                        await case.prepare()
                    await run_action(h.connector.actions[case.action], case.context)
                for stream in list(h.connector.streams.values())[:1]:
                    cursor = Cursor(stream.initial_cursor)
                    async for _ in stream.read(cursor):
                        pass
            assert rec.exchanges, "no vendor exchange was recorded"
            for ex in rec.exchanges:
                text = repr(ex)
                for s in secrets:
                    assert s not in text, f"a secret appears in the audit of {ex.url}"

        self._run(test)

    # -- webhooks ---------------------------------------------------------------------

    def test_valid_webhook_parses_to_canonical_events(self) -> None:
        async def test(h: ConformanceHarness) -> None:
            wh = h.connector.webhooks
            if wh is None:
                return
            assert h.webhook is not None, "a connector with webhooks gives a sample delivery"
            headers, raw = h.webhook()
            assert wh.handshake(headers, raw) is None
            wh.verify(headers, raw)
            events = wh.parse(headers, raw)
            assert events
            for ev in events:
                _check_record(ev)

        self._run(test)

    def test_tampered_or_unsigned_webhook_is_rejected(self) -> None:
        async def test(h: ConformanceHarness) -> None:
            wh = h.connector.webhooks
            if wh is None:
                return
            assert h.webhook is not None
            headers, raw = h.webhook()
            tampered = raw.replace(b"1", b"2", 1) if b"1" in raw else raw + b" "
            for bad_headers, bad_raw in (
                (headers, tampered),
                ({k: v for k, v in headers.items() if "hmac" not in k and "sig" not in k}, raw),
            ):
                try:
                    wh.verify(bad_headers, bad_raw)
                except SignatureRejected:
                    continue
                raise AssertionError("a tampered or unsigned webhook was accepted")

        self._run(test)
