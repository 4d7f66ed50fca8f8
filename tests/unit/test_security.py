"""Secrets stay secret: crossdock.security (crypto, apikeys, redact)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from crossdock.security.apikeys import (
    Role,
    hash_api_key,
    new_api_key,
    parse_prefix,
    verify_api_key,
)
from crossdock.security.crypto import (
    SecretBox,
    SecretKeyError,
    generate_key,
    load_secret_box,
)
from crossdock.security.redact import (
    REDACTED,
    SENSITIVE_HEADERS,
    Redactor,
    is_sensitive_header,
    is_sensitive_key,
    redact_headers,
    redact_json,
    redact_text,
)

CREDS = {"access_token": "shpat_5f0c1d2e3b4a", "client_secret": "cs_ünïcode-secret", "n": 3}
UNDECRYPTABLE = (
    "the stored credentials cannot be decrypted with the configured keys: "
    "was CROSSDOCK_SECRET_KEYS changed without keeping the old key?"
)


# --- crypto -----------------------------------------------------------------------------


def test_credentials_round_trip_through_encryption() -> None:
    box = SecretBox([generate_key()])
    token = box.encrypt_json(CREDS)
    assert isinstance(token, str)
    assert box.decrypt_json(token) == CREDS


def test_ciphertext_does_not_contain_the_plaintext() -> None:
    box = SecretBox([generate_key()])
    token = box.encrypt_json(CREDS)
    assert "shpat_5f0c1d2e3b4a" not in token
    assert "access_token" not in token
    assert box.encrypt_json(CREDS) != token  # fresh IV every time


def test_old_key_still_decrypts_after_rotation() -> None:
    old, new = generate_key(), generate_key()
    token = SecretBox([old]).encrypt_json(CREDS)
    box = SecretBox([new, old])
    assert box.decrypt_json(token) == CREDS
    assert box.needs_rotation(token) is True
    rotated = box.rotate(token)
    assert box.needs_rotation(rotated) is False
    assert SecretBox([new]).decrypt_json(rotated) == CREDS
    with pytest.raises(SecretKeyError):
        SecretBox([old]).decrypt_json(rotated)


def test_new_tokens_are_encrypted_under_the_first_key() -> None:
    new, old = generate_key(), generate_key()
    token = SecretBox([new, old]).encrypt_json(CREDS)
    assert SecretBox([new]).decrypt_json(token) == CREDS
    assert SecretBox([new, old]).needs_rotation(token) is False


def test_dropped_key_gives_a_plain_error_without_key_material() -> None:
    old, new = generate_key(), generate_key()
    token = SecretBox([old]).encrypt_json(CREDS)
    box = SecretBox([new])
    for action in (box.decrypt_json, box.rotate, box.needs_rotation):
        with pytest.raises(SecretKeyError) as info:
            action(token)
        shown = f"{info.value} {info.value!r}"
        assert str(info.value) == UNDECRYPTABLE
        assert old not in shown
        assert new not in shown
        assert info.value.__cause__ is None


def test_garbage_token_gives_the_plain_error() -> None:
    box = SecretBox([generate_key()])
    for token in ("", "not-a-token", "gAAAAA" + "x" * 80, "ünïcode"):
        with pytest.raises(SecretKeyError, match="cannot be decrypted"):
            box.decrypt_json(token)


def test_invalid_key_error_does_not_echo_the_key() -> None:
    bad = "this-is-not-a-fernet-key-but-might-be-a-password"
    with pytest.raises(SecretKeyError) as info:
        SecretBox([generate_key(), bad])
    assert bad not in str(info.value)
    assert "number 2" in str(info.value)


def test_a_box_needs_at_least_one_key() -> None:
    with pytest.raises(SecretKeyError, match="no secret keys"):
        SecretBox([])
    with pytest.raises(SecretKeyError):
        SecretBox(["", "  "])


def test_secret_box_repr_hides_the_keys() -> None:
    key = generate_key()
    box = SecretBox([key, generate_key()])
    assert key not in repr(box)
    assert repr(box) == "SecretBox(2 keys)"
    assert box.key_count == 2


def test_decrypted_credentials_must_be_a_json_object() -> None:
    key = generate_key()
    token = Fernet(key.encode()).encrypt(b"[1, 2]").decode()
    with pytest.raises(SecretKeyError, match="not a JSON object"):
        SecretBox([key]).decrypt_json(token)


def test_generated_keys_are_valid_fernet_keys() -> None:
    key = generate_key()
    Fernet(key.encode())
    assert key != generate_key()


def test_keys_from_the_environment_come_first_newest_first(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    token = SecretBox([old]).encrypt_json(CREDS)
    key_file = tmp_path / "keys"
    box = load_secret_box({"CROSSDOCK_SECRET_KEYS": f" {new} , {old} ,"}, key_file)
    assert box.decrypt_json(token) == CREDS
    assert SecretBox([new]).decrypt_json(box.encrypt_json(CREDS)) == CREDS
    assert not key_file.exists()  # the env wins; no key file is made


def test_missing_key_file_is_created_with_a_fresh_key_and_mode_0600(tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "secret.keys"
    box = load_secret_box({}, key_file)
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    lines = key_file.read_text().splitlines()
    assert len(lines) == 1
    Fernet(lines[0].encode())
    token = box.encrypt_json(CREDS)
    # The next start reads the same key back.
    assert load_secret_box({}, key_file).decrypt_json(token) == CREDS
    assert [p.name for p in key_file.parent.iterdir()] == ["secret.keys"]  # no temp files


def test_key_file_is_read_newest_first_ignoring_blanks_and_comments(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    key_file = tmp_path / "keys"
    key_file.write_text(f"# rotated 2025-06-01\n{new}\n\n{old}\n")
    box = load_secret_box({"CROSSDOCK_SECRET_KEYS": "  "}, key_file)
    assert box.key_count == 2
    assert SecretBox([new]).decrypt_json(box.encrypt_json(CREDS)) == CREDS
    assert box.decrypt_json(SecretBox([old]).encrypt_json(CREDS)) == CREDS


def test_empty_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("\n# nothing here\n")
    with pytest.raises(SecretKeyError, match="holds no keys"):
        load_secret_box({}, key_file)
    assert key_file.read_text() == "\n# nothing here\n"


# --- API keys ---------------------------------------------------------------------------


def test_new_api_key_has_the_documented_shape() -> None:
    key, prefix, hashed = new_api_key()
    assert re.fullmatch(r"cdk_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", key)
    assert key.startswith(f"cdk_{prefix}_")
    assert parse_prefix(key) == prefix
    assert hashed == hashlib.sha256(key.encode()).hexdigest()
    assert hashed == hash_api_key(key)


def test_api_key_hash_is_not_the_key() -> None:
    key, _prefix, hashed = new_api_key()
    secret_part = key.split("_", 2)[2]
    assert hashed != key
    assert key not in hashed
    assert secret_part not in hashed
    assert re.fullmatch(r"[0-9a-f]{64}", hashed)


def test_api_keys_and_prefixes_are_unique() -> None:
    keys = [new_api_key() for _ in range(200)]
    assert len({k for k, _, _ in keys}) == 200
    assert len({p for _, p, _ in keys}) == 200


def test_verify_api_key_accepts_only_the_right_key() -> None:
    key, _, hashed = new_api_key()
    other, _, _ = new_api_key()
    assert verify_api_key(key, hashed)
    assert verify_api_key(f"  {key}\n", hashed)
    assert verify_api_key(key, hashed.upper())
    assert not verify_api_key(other, hashed)
    assert not verify_api_key(key[:-1] + ("A" if key[-1] != "A" else "B"), hashed)
    assert not verify_api_key(key, "")
    assert not verify_api_key(key, "ü" * 64)
    assert not verify_api_key(hashed, hashed)  # the stored hash is not a key


def test_parse_prefix_rejects_malformed_keys() -> None:
    key, prefix, _ = new_api_key()
    assert parse_prefix(key) == prefix
    for bad in (
        "",
        "cdk_",
        key[:-1],
        key + "x",
        key.replace("cdk_", "cdx_"),
        key.replace(prefix, prefix.upper()),
        "Bearer " + key,
        f"cdk_{prefix}_" + "!" * 43,
    ):
        assert parse_prefix(bad) is None, bad


def test_roles_are_ordered_viewer_operator_admin() -> None:
    assert Role.ADMIN.allows(Role.ADMIN)
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert Role.ADMIN.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.OPERATOR)
    assert not Role.OPERATOR.allows(Role.ADMIN)
    assert Role.VIEWER.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert not Role.VIEWER.allows(Role.ADMIN)
    assert Role("operator") is Role.OPERATOR
    assert Role.ADMIN == "admin"
    assert [r.value for r in sorted(Role, key=lambda r: r.rank)] == ["viewer", "operator", "admin"]


# --- redaction --------------------------------------------------------------------------


def test_named_sensitive_headers_are_redacted_in_any_case() -> None:
    names = [
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "X-API-Key",
        "Api-Key",
        "X-Shopify-Access-Token",
        "x-amz-access-token",
        "X-IBM-Client-Secret",
    ]
    assert {n.lower() for n in names} == SENSITIVE_HEADERS
    headers = {n: "value-" + n for n in names} | {"Content-Type": "application/json"}
    redacted = redact_headers(headers)
    assert list(redacted) == list(headers)  # names and order kept
    for n in names:
        assert redacted[n] == REDACTED
    assert redacted["Content-Type"] == "application/json"


def test_headers_named_like_secrets_are_redacted_but_idempotency_key_is_not() -> None:
    for name in (
        "X-Auth-Token",
        "X-Client-Secret",
        "X-WC-Webhook-Signature",
        "webhook-signature",
        "X-Password",
        "X-Access-Key",
        "X-Shopify-Hmac-Sha256",
    ):
        assert is_sensitive_header(name), name
    for name in ("Idempotency-Key", "X-Idempotency-Key", "Content-Type", "X-Shopify-Topic"):
        assert not is_sensitive_header(name), name
    redacted = redact_headers({"Idempotency-Key": "abc123", "X-Auth-Token": "t0k3n"})
    assert redacted == {"Idempotency-Key": "abc123", "X-Auth-Token": REDACTED}


def test_known_secret_values_are_redacted_inside_other_headers() -> None:
    redacted = redact_headers(
        {"Location": "https://shop.example/cb?key=sk_live_abcdef&x=1"}, ["sk_live_abcdef"]
    )
    assert "sk_live_abcdef" not in redacted["Location"]


def test_sensitive_json_fields_are_redacted_at_any_depth() -> None:
    body = {
        "order": {"id": 1, "payment": {"card_number": "4111111111111111", "cvv": 123}},
        "auth": [{"clientSecret": "abc", "Refresh-Token": "r1", "apiKey": "k"}],
        "password": None,
        "credentials": {"Authorization": {"scheme": "Bearer", "value": "xyz"}},
        "record_key": "SKU-1",
        "idempotency_key": "idem-1",
    }
    out = redact_json(body)
    assert out["order"]["id"] == 1
    assert out["order"]["payment"] == {"card_number": REDACTED, "cvv": REDACTED}
    assert out["auth"] == [
        {"clientSecret": REDACTED, "Refresh-Token": REDACTED, "apiKey": REDACTED}
    ]
    assert out["password"] == REDACTED
    assert out["credentials"] == {"Authorization": REDACTED}
    assert out["record_key"] == "SKU-1"
    assert out["idempotency_key"] == "idem-1"


def test_sensitive_key_names_match_case_insensitive_substrings() -> None:
    for name in (
        "PASSWORD",
        "db_passwd",
        "consumer_secret",
        "access_token",
        "x_api_key",
        "ApiKey",
        "authorization",
        "client_secret",
        "cardNumber",
        "card-number",
        "CVC",
        "wsPassword",
    ):
        assert is_sensitive_key(name), name
    for name in ("email", "total_price", "sku", "key", "record_key", "api"):
        assert not is_sensitive_key(name), name


def test_redact_json_does_not_change_its_input() -> None:
    body = {"password": "p", "items": [{"note": "uses s3cr3t-value"}]}
    before = copy.deepcopy(body)
    redact_json(body, ["s3cr3t-value"])
    assert body == before


def test_secret_value_is_redacted_inside_nested_strings() -> None:
    secret = "shpat_5f0c1d2e3b4a"
    body = {
        "note": f"token was {secret}.",
        "lines": [{"memo": f"{secret}{secret}"}, [f"x {secret} y"]],
        f"k-{secret}": 1,
        "n": 42,
    }
    out = redact_json(body, [secret])
    assert secret not in json.dumps(out)
    assert out["note"] == f"token was {REDACTED}."
    assert out["lines"][0]["memo"] == REDACTED * 2
    assert out["lines"][1] == [f"x {REDACTED} y"]
    assert out["n"] == 42


def test_short_and_empty_secret_values_are_not_searched_for() -> None:
    body = {"note": "a b abc 123"}
    assert redact_json(body, ["", "a", "abc", "   "]) == body
    assert redact_json({"note": "pin abcd"}, ["abcd"]) == {"note": f"pin {REDACTED}"}


def test_encoded_forms_of_a_secret_value_are_redacted() -> None:
    secret = 'p@ss/wörd "q"+1'
    for form in (
        "password%3D" + "p%40ss%2Fw%C3%B6rd%20%22q%22%2B1",  # quote
        "p%40ss%2Fw%C3%B6rd+%22q%22%2B1",  # quote_plus
        json.dumps({"v": secret})[7:-2],  # JSON-escaped
    ):
        assert "[REDACTED]" in redact_text(f"x {form} y", [secret]), form


def test_secret_values_given_as_secretstr_are_redacted() -> None:
    out = redact_json({"note": "key is hunter22"}, [SecretStr("hunter22")])
    assert out == {"note": f"key is {REDACTED}"}


def test_a_secret_containing_another_is_redacted_whole() -> None:
    out = redact_text("value=abcd-efgh-ijkl", ["abcd", "abcd-efgh-ijkl"])
    assert out == f"value={REDACTED}"


def test_redact_text_redacts_a_json_body() -> None:
    text = json.dumps({"order": {"id": 7}, "access_token": "tok_abc", "note": "my s3cr3tX"})
    out = redact_text(text, ["s3cr3tX"])
    assert json.loads(out) == {
        "order": {"id": 7},
        "access_token": REDACTED,
        "note": f"my {REDACTED}",
    }


def test_redact_text_keeps_the_layout_when_no_field_is_hidden() -> None:
    text = '{\n  "note": "uses s3cr3tX",\n  "sku": "A-1"\n}'
    assert redact_text(text, ["s3cr3tX"]) == '{\n  "note": "uses [REDACTED]",\n  "sku": "A-1"\n}'
    assert redact_text(text) == text


def test_redact_text_redacts_a_truncated_json_body() -> None:
    text = '{"client_secret": "cs_1234", "card_number": 4111111111111111, "password": "hunt'
    out = redact_text(text)
    assert "cs_1234" not in out
    assert "4111111111111111" not in out
    assert "hunt" not in out
    assert out.startswith(f'{{"client_secret": "{REDACTED}", "card_number": "{REDACTED}"')


def test_redact_text_redacts_form_bodies() -> None:
    text = "grant_type=refresh_token&refresh_token=Atzr%7Cabc&client_id=amzn1&client_secret=s3c"
    out = redact_text(text)
    assert out == (
        f"grant_type=refresh_token&refresh_token={REDACTED}&client_id=amzn1"
        f"&client_secret={REDACTED}"
    )
    assert redact_text("webhook_id=12") == "webhook_id=12"


def test_redact_text_redacts_xml_credentials() -> None:
    text = (
        "<soapenv:Body><ship:createShipment><wsUserName>YKTEST</wsUserName>"
        "<wsPassword>YK-p4ss</wsPassword><ns:api_key a='1'>k-123</ns:api_key>"
        "</ship:createShipment></soapenv:Body>"
    )
    out = redact_text(text)
    assert "YK-p4ss" not in out
    assert "k-123" not in out
    assert f"<wsPassword>{REDACTED}</wsPassword>" in out
    assert "<wsUserName>YKTEST</wsUserName>" in out


def test_redact_text_redacts_header_like_lines() -> None:
    text = "GET /orders\nAuthorization: Bearer eyJhbGciOi\nAccept: */*\n"
    out = redact_text(text)
    assert "eyJhbGciOi" not in out
    assert f"Authorization: {REDACTED}" in out
    assert "Accept: */*" in out


def test_absurdly_deep_json_is_hidden_rather_than_failing() -> None:
    deep: object = "s"
    for _ in range(5000):
        deep = [deep]
    assert redact_json(deep) == REDACTED


def test_redactor_bundles_the_rules_for_one_connection() -> None:
    secret = "cs_live_9f8e7d6c"
    redactor = Redactor([secret, "", "ab"])
    assert secret not in repr(redactor)
    assert repr(redactor) == "Redactor(1 secret values)"
    assert redactor.headers({"Authorization": "x", "X-Note": f"a{secret}"}) == {
        "Authorization": REDACTED,
        "X-Note": f"a{REDACTED}",
    }
    assert redactor.json({"note": secret, "token": 1}) == {"note": REDACTED, "token": REDACTED}
    assert redactor.text(f"password=x&memo={secret}") == f"password={REDACTED}&memo={REDACTED}"
    assert redactor.value(f"password {secret}") == f"password {REDACTED}"
    assert Redactor().text("plain") == "plain"


def test_redact_text_finds_a_secret_hidden_by_json_escapes() -> None:
    text = '{"note": "\\u0073\\u0033cr3tX"}'  # "s3cr3tX" written with escapes
    out = redact_text(text, ["s3cr3tX"])
    assert json.loads(out) == {"note": REDACTED}
