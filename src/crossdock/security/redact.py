"""Redaction for logs and the audit trail.

Three things are hidden, each replaced by ``[REDACTED]``:

- the values of sensitive headers (:func:`is_sensitive_header`);
- the values of sensitive fields in JSON, form and XML bodies (:func:`is_sensitive_key`);
- any occurrence of a known secret value (a connection's credentials) inside any string,
  also in its URL-encoded and JSON-escaped forms. Values shorter than 4 characters are
  not searched for: they would redact ordinary text.

A :class:`Redactor` bundles the three for one connection's secret values, so the
pipeline holds one per connection and the search pattern is compiled once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from pydantic import SecretStr

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SENSITIVE_HEADERS",
    "Redactor",
    "is_sensitive_header",
    "is_sensitive_key",
    "redact_headers",
    "redact_json",
    "redact_text",
]

REDACTED = "[REDACTED]"
"""What a hidden value is replaced by."""

MIN_SECRET_LENGTH = 4
"""Known secret values shorter than this are not searched for inside strings."""

SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-shopify-access-token",
        "x-amz-access-token",
        "x-ibm-client-secret",
    }
)
"""Header names (lower-case) whose values are always hidden. Any header whose name
contains one of :data:`_HEADER_WORDS` is hidden too, see :func:`is_sensitive_header`."""

# A header containing one of these words is sensitive ("idempotency-key" excepted).
# "hmac" catches X-Shopify-Hmac-Sha256, which carries a signature without saying so.
_HEADER_WORDS = ("token", "secret", "signature", "password", "passwd", "key", "hmac")
_HEADER_EXEMPT = ("idempotency-key", "idempotency_key")

# A field whose name, lower-cased and without separators, contains one of these.
_KEY_WORDS = (
    "password",
    "passwd",
    "secret",  # also client_secret, consumer_secret
    "token",  # also access_token, refresh_token
    "apikey",  # api_key, apiKey, api-key
    "authorization",
    "privatekey",
    "cardnumber",  # card_number, cardNumber
    "cvv",
    "cvc",
)
_KEY_SEPARATORS = re.compile(r"[\s_.\-]")


def is_sensitive_header(name: str) -> bool:
    """True if a header with this name must not be logged or stored in clear.

    Sensitive: the names in :data:`SENSITIVE_HEADERS`, and any name containing token,
    secret, signature, password, passwd, key or hmac — except ``idempotency-key``.
    """
    lowered = name.strip().lower()
    if lowered in SENSITIVE_HEADERS:
        return True
    for exempt in _HEADER_EXEMPT:
        lowered = lowered.replace(exempt, "")
    return any(word in lowered for word in _HEADER_WORDS)


def is_sensitive_key(name: str) -> bool:
    """True if a field with this name holds a secret.

    Case-insensitive substring match, ignoring ``_``, ``-``, ``.`` and spaces, of:
    password, passwd, secret, token, api_key, authorization, private_key, card_number,
    cvv, cvc (so client_secret, access_token, refresh_token, apiKey are included).
    """
    flat = _KEY_SEPARATORS.sub("", name.lower())
    return any(word in flat for word in _KEY_WORDS)


# --- known secret values ---------------------------------------------------------------


def _variants(value: str) -> set[str]:
    """The forms a secret value may take inside a logged body."""
    out = {value, quote(value, safe=""), quote_plus(value)}
    out.add(json.dumps(value)[1:-1])  # JSON-escaped, ASCII
    out.add(json.dumps(value, ensure_ascii=False)[1:-1])
    out.add(value.replace("/", "\\/"))  # PHP's json_encode escapes slashes
    return {v for v in out if len(v) >= MIN_SECRET_LENGTH}


def _plain_values(values: Iterable[str | SecretStr]) -> tuple[str, ...]:
    plain: set[str] = set()
    for value in values:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and len(text) >= MIN_SECRET_LENGTH and text.strip():
            plain.add(text)
    return tuple(sorted(plain))


class _Rules:
    """The compiled search for a set of secret values."""

    __slots__ = ("count", "pattern")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.count = len(values)
        forms: set[str] = set()
        for value in values:
            forms |= _variants(value)
        if forms:
            # Longest first: the regex takes the first alternative that matches, so a
            # secret that contains another secret is replaced whole.
            ordered = sorted(forms, key=lambda s: (-len(s), s))
            self.pattern: re.Pattern[str] | None = re.compile(
                "|".join(re.escape(f) for f in ordered)
            )
        else:
            self.pattern = None

    def scrub(self, text: str) -> str:
        """Replace every known secret value inside ``text``."""
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(REDACTED, text)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            name: REDACTED if is_sensitive_header(name) else self.scrub(str(value))
            for name, value in headers.items()
        }

    def json(self, obj: Any) -> Any:
        try:
            return self._walk(obj)
        except RecursionError:  # absurdly deep input: hide it all rather than fail
            return REDACTED

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.scrub(obj)
        if isinstance(obj, Mapping):
            out: dict[Any, Any] = {}
            for key, value in obj.items():
                if isinstance(key, str):
                    out[self.scrub(key)] = REDACTED if is_sensitive_key(key) else self._walk(value)
                else:
                    out[key] = self._walk(value)
            return out
        if isinstance(obj, list):
            return [self._walk(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(item) for item in obj)
        if isinstance(obj, SecretStr):
            return REDACTED
        return obj

    def text(self, text: str) -> str:
        head = text.lstrip()[:1]
        if head in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                pass  # e.g. a truncated body: fall through to the text rules
            else:
                if isinstance(parsed, (dict, list)):
                    redacted = self.json(parsed)
                    if redacted == parsed:
                        return text
                    # Keep the layout if replacing secret values in the text gives the
                    # same result as redacting the parsed value; else re-dump it.
                    scrubbed = self.scrub(text)
                    try:
                        same = json.loads(scrubbed) == redacted
                    except ValueError:
                        same = False
                    if same:
                        return scrubbed
                    return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
        text = _JSON_PAIR.sub(_redact_json_pair, text)
        text = _FORM_PAIR.sub(_redact_form_pair, text)
        text = _XML_ELEMENT.sub(_redact_xml_element, text)
        text = _LINE_PAIR.sub(_redact_line_pair, text)
        return self.scrub(text)


@lru_cache(maxsize=256)
def _rules_for(values: tuple[str, ...]) -> _Rules:
    return _Rules(values)


def _rules(values: Iterable[str | SecretStr]) -> _Rules:
    return _rules_for(_plain_values(values))


# --- patterns for bodies that are not (complete) JSON ------------------------------------

# "key": "value" / "key": 123 / true / false / null; the closing quote may be missing
# when the body was truncated.
_JSON_PAIR = re.compile(
    r'(?P<pre>"(?P<key>[^"\\]{1,200})"\s*:\s*)'
    r'(?P<value>"(?:[^"\\]|\\.)*"?|-?[0-9][0-9.eE+\-]*|true|false|null)'
)
# key=value in form bodies and query strings.
_FORM_PAIR = re.compile(r"(?P<pre>(?:^|(?<=[?&;\s]))(?P<key>[^=&?;\s]{1,200})=)(?P<value>[^&;\s]*)")
# <wsPassword>value</wsPassword>, with or without a namespace prefix and attributes.
_XML_ELEMENT = re.compile(
    r"(?P<open><(?P<tag>(?:[\w.\-]+:)?(?P<key>[\w.\-]{1,200}))(?:\s[^<>]*)?>)"
    r"(?P<value>[^<]*)(?P<close></(?P=tag)\s*>)"
)
# Authorization: Bearer ...  /  api_key: ...  at the start of a line.
_LINE_PAIR = re.compile(
    r"(?m)^(?P<pre>[ \t]*(?P<key>[A-Za-z0-9_\-]{1,200})[ \t]*:[ \t]*)(?P<value>\S.*)$"
)


def _redact_json_pair(m: re.Match[str]) -> str:
    if not is_sensitive_key(m.group("key")):
        return m.group(0)
    return f'{m.group("pre")}"{REDACTED}"'


def _redact_form_pair(m: re.Match[str]) -> str:
    if not is_sensitive_key(unquote_plus(m.group("key"))) or not m.group("value"):
        return m.group(0)
    return m.group("pre") + REDACTED


def _redact_xml_element(m: re.Match[str]) -> str:
    if not is_sensitive_key(m.group("key")) or not m.group("value"):
        return m.group(0)
    return m.group("open") + REDACTED + m.group("close")


def _redact_line_pair(m: re.Match[str]) -> str:
    key = m.group("key")
    if not (is_sensitive_key(key) or key.lower() in SENSITIVE_HEADERS):
        return m.group(0)
    return m.group("pre") + REDACTED


# --- the public functions -----------------------------------------------------------------


def redact_headers(
    headers: Mapping[str, str], extra_values: Iterable[str | SecretStr] = ()
) -> dict[str, str]:
    """A copy of ``headers`` with sensitive values replaced by ``[REDACTED]``.

    Names keep their case. Known secret values (``extra_values``) are also hidden inside
    the values of the other headers.
    """
    return _rules(extra_values).headers(headers)


def redact_json(obj: Any, extra_values: Iterable[str | SecretStr] = ()) -> Any:
    """A copy of a parsed JSON value with secrets hidden; the input is not changed.

    Values of sensitive fields (:func:`is_sensitive_key`), whatever their type, become
    ``[REDACTED]``; any known secret value (``extra_values``, at least 4 characters)
    inside any string becomes ``[REDACTED]`` too.
    """
    return _rules(extra_values).json(obj)


def redact_text(text: str, extra_values: Iterable[str | SecretStr] = ()) -> str:
    """``text`` (a raw body) with secrets hidden.

    A complete JSON object or array is redacted like :func:`redact_json` (and re-dumped
    compactly if a field was hidden). Anything else — truncated JSON, form bodies
    (``password=...&token=...``), XML, ``Header: value`` lines — has the values of
    sensitive fields hidden by pattern. Known secret values are hidden everywhere.
    """
    return _rules(extra_values).text(text)


class Redactor:
    """Redaction for one connection: the rules above plus its known secret values.

    Its ``repr`` says how many values it knows, never what they are.
    """

    __slots__ = ("_rules",)

    def __init__(self, secret_values: Iterable[str | SecretStr] = ()) -> None:
        self._rules = _Rules(_plain_values(secret_values))

    def __repr__(self) -> str:
        return f"Redactor({self._rules.count} secret values)"

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Like :func:`redact_headers` with this connection's secret values."""
        return self._rules.headers(headers)

    def json(self, obj: Any) -> Any:
        """Like :func:`redact_json` with this connection's secret values."""
        return self._rules.json(obj)

    def text(self, text: str) -> str:
        """Like :func:`redact_text` with this connection's secret values."""
        return self._rules.text(text)

    def value(self, text: str) -> str:
        """Only hide this connection's secret values inside ``text`` (no field rules)."""
        return self._rules.scrub(text)
