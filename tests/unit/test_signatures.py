"""Webhook signature verification: crossdock.ingest.signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from crossdock.ingest.signatures import (
    HmacSignature,
    NoSignature,
    SignatureConfig,
    SignatureError,
    StandardWebhooksSignature,
    sign_hmac,
    sign_standard_webhooks,
    verify,
)

BODY = b'{"id":820982911946154508,"email":"jon@example.com","total_price":"199.00"}'
SHOP_SECRET = "shpss_0123456789abcdef0123456789abcdef"
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = 1_750_000_000.0


def _b64_hmac(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _shopify() -> HmacSignature:
    return HmacSignature(
        header="X-Shopify-Hmac-Sha256", encoding="base64", secret=SecretStr(SHOP_SECRET)
    )


def _reason(config: SignatureConfig, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureError) as info:
        verify(config, headers, body, now=NOW)
    return info.value.reason


# --- HMAC-SHA256 ------------------------------------------------------------------------


def test_shopify_style_base64_signature_in_x_shopify_hmac_sha256_verifies() -> None:
    headers = {"X-Shopify-Hmac-Sha256": _b64_hmac(SHOP_SECRET, BODY)}
    verify(_shopify(), headers, BODY)


def test_header_lookup_ignores_case() -> None:
    value = _b64_hmac(SHOP_SECRET, BODY)
    verify(_shopify(), {"x-shopify-hmac-sha256": value}, BODY)
    verify(_shopify(), {"X-SHOPIFY-HMAC-SHA256": value}, BODY)
    lower_config = HmacSignature(
        header="x-shopify-hmac-sha256", encoding="base64", secret=SecretStr(SHOP_SECRET)
    )
    verify(lower_config, {"X-Shopify-Hmac-Sha256": value}, BODY)


def test_woocommerce_base64_signature_in_x_wc_webhook_signature_verifies() -> None:
    secret = "woo webhook secret ü"  # WooCommerce secrets are free text
    config = HmacSignature(
        header="X-WC-Webhook-Signature", encoding="base64", secret=SecretStr(secret)
    )
    verify(config, {"X-WC-Webhook-Signature": _b64_hmac(secret, BODY)}, BODY)


def test_easypost_hex_signature_with_hmac_sha256_hex_prefix_verifies() -> None:
    secret = "easypost-webhook-secret"
    config = HmacSignature(
        header="X-Hmac-Signature",
        encoding="hex",
        prefix="hmac-sha256-hex=",
        secret=SecretStr(secret),
    )
    headers = {"X-Hmac-Signature": "hmac-sha256-hex=" + _hex_hmac(secret, BODY)}
    verify(config, headers, BODY)


def test_easypost_secret_is_nfkd_normalised_when_configured() -> None:
    secret = "ﬁle-secret-①"  # NFKD: "file-secret-1"
    config = HmacSignature(
        header="X-Hmac-Signature",
        encoding="hex",
        prefix="hmac-sha256-hex=",
        secret=SecretStr(secret),
        nfkd_secret=True,
    )
    headers = {"X-Hmac-Signature": "hmac-sha256-hex=" + _hex_hmac("file-secret-1", BODY)}
    verify(config, headers, BODY)
    assert (
        sign_hmac(secret, BODY, "hex", "hmac-sha256-hex=", nfkd_secret=True)
        == (headers["X-Hmac-Signature"])
    )


def test_github_style_sha256_prefix_verifies() -> None:
    config = HmacSignature(
        header="X-Hub-Signature-256",
        encoding="hex",
        prefix="sha256=",
        secret=SecretStr("gh-secret"),
    )
    verify(config, {"X-Hub-Signature-256": "sha256=" + _hex_hmac("gh-secret", BODY)}, BODY)


def test_uppercase_hex_signature_verifies() -> None:
    config = HmacSignature(header="X-Signature", encoding="hex", secret=SecretStr("s3cret-value"))
    verify(config, {"X-Signature": _hex_hmac("s3cret-value", BODY).upper()}, BODY)


def test_sign_hmac_matches_an_independent_computation() -> None:
    assert sign_hmac(SHOP_SECRET, BODY, "base64") == _b64_hmac(SHOP_SECRET, BODY)
    assert sign_hmac(SHOP_SECRET, BODY, "hex", "sha256=") == "sha256=" + _hex_hmac(
        SHOP_SECRET, BODY
    )
    assert sign_hmac(SHOP_SECRET.encode(), BODY, "hex") == _hex_hmac(SHOP_SECRET, BODY)


def test_empty_body_can_be_signed_and_verified() -> None:
    verify(_shopify(), {"X-Shopify-Hmac-Sha256": sign_hmac(SHOP_SECRET, b"", "base64")}, b"")


def test_tampered_body_fails_hmac_verification() -> None:
    headers = {"X-Shopify-Hmac-Sha256": _b64_hmac(SHOP_SECRET, BODY)}
    tampered = BODY.replace(b"199.00", b"1.00")
    assert _reason(_shopify(), headers, tampered) == "signature does not match the body"


def test_signature_made_with_another_secret_fails() -> None:
    headers = {"X-Shopify-Hmac-Sha256": _b64_hmac("another-secret", BODY)}
    assert _reason(_shopify(), headers) == "signature does not match the body"


def test_truncated_signature_fails() -> None:
    value = base64.b64encode(base64.b64decode(_b64_hmac(SHOP_SECRET, BODY))[:16]).decode()
    assert _reason(_shopify(), {"X-Shopify-Hmac-Sha256": value}) == (
        "signature does not match the body"
    )


def test_missing_hmac_header_is_named_in_the_reason() -> None:
    assert _reason(_shopify(), {"X-Shopify-Topic": "orders/create"}) == (
        "missing header X-Shopify-Hmac-Sha256"
    )
    assert _reason(_shopify(), {"X-Shopify-Hmac-Sha256": "  "}) == (
        "missing header X-Shopify-Hmac-Sha256"
    )


def test_hmac_header_without_the_configured_prefix_is_malformed() -> None:
    config = HmacSignature(
        header="X-Hmac-Signature",
        encoding="hex",
        prefix="hmac-sha256-hex=",
        secret=SecretStr("abcd1234"),
    )
    headers = {"X-Hmac-Signature": _hex_hmac("abcd1234", BODY)}
    assert _reason(config, headers) == "malformed signature header"


def test_undecodable_hmac_signature_is_malformed() -> None:
    assert _reason(_shopify(), {"X-Shopify-Hmac-Sha256": "not base64 !!"}) == (
        "malformed signature header"
    )
    config = HmacSignature(header="X-Signature", encoding="hex", secret=SecretStr("abcd1234"))
    assert _reason(config, {"X-Signature": "zz" * 32}) == "malformed signature header"


def test_signature_error_never_contains_the_secret() -> None:
    secret = "super-secret-signing-key-4711"
    b64 = HmacSignature(header="X-Sig", encoding="base64", secret=SecretStr(secret))
    hexed = HmacSignature(
        header="X-Sig", encoding="hex", prefix="sha256=", secret=SecretStr(secret)
    )
    expected = {sign_hmac(secret, BODY, "base64"), sign_hmac(secret, BODY, "hex")}
    sent = sign_hmac("wrong-secret", BODY, "base64")
    cases: list[tuple[SignatureConfig, dict[str, str]]] = [
        (b64, {"X-Sig": sent}),
        (b64, {}),
        (b64, {"X-Sig": secret}),  # someone pasted the secret itself into the header
        (hexed, {"X-Sig": "sha256=" + secret}),
        (hexed, {"X-Sig": sign_hmac("wrong-secret", BODY, "hex")}),
    ]
    whsec = "whsec_" + base64.b64encode(secret.encode()).decode()
    sw = StandardWebhooksSignature(secret=SecretStr(whsec))
    sw_headers = sign_standard_webhooks("whsec_" + "QUJDREVGR0g=", "msg_1", NOW, BODY)
    cases += [
        (sw, sw_headers),
        (sw, {**sw_headers, "webhook-timestamp": str(int(NOW) - 3600)}),
        (sw, {**sw_headers, "webhook-signature": "garbage"}),
    ]
    sw_expected = sign_standard_webhooks(whsec, "msg_1", NOW, BODY)["webhook-signature"]
    for config, headers in cases:
        with pytest.raises(SignatureError) as info:
            verify(config, headers, BODY, now=NOW)
        shown = f"{info.value} {info.value!r} {info.value.reason} {info.value.args}"
        assert secret not in shown
        assert whsec not in shown
        assert base64.b64encode(secret.encode()).decode() not in shown
        for signature in [*expected, sent, sw_expected, sw_expected.split(",", 1)[1]]:
            assert signature not in shown
        assert info.value.__cause__ is None or secret not in str(info.value.__cause__)


def test_no_signature_accepts_any_delivery() -> None:
    verify(NoSignature(), {}, BODY)
    verify(None, {"X-Anything": "1"}, b"not even json")


# --- configuration ------------------------------------------------------------------------


def test_config_is_chosen_by_the_scheme_discriminator() -> None:
    adapter: TypeAdapter[SignatureConfig] = TypeAdapter(SignatureConfig)
    assert isinstance(adapter.validate_python({"scheme": "none"}), NoSignature)
    hmac_config = adapter.validate_python(
        {
            "scheme": "hmac-sha256",
            "header": "X-WC-Webhook-Signature",
            "encoding": "base64",
            "secret": "woo-secret",
        }
    )
    assert isinstance(hmac_config, HmacSignature)
    assert hmac_config.prefix == ""
    sw = adapter.validate_python({"scheme": "standard-webhooks", "secret": WHSEC})
    assert isinstance(sw, StandardWebhooksSignature)
    assert sw.tolerance_seconds == 300
    with pytest.raises(ValidationError):
        adapter.validate_python({"scheme": "rot13", "secret": "x"})
    with pytest.raises(ValidationError):
        adapter.validate_python(
            {"scheme": "hmac-sha256", "header": "X", "encoding": "base32", "secret": "abcd"}
        )


def test_config_repr_and_validation_errors_hide_the_secret() -> None:
    class Parent(BaseModel):  # an enclosing model that does not hide inputs itself
        signature: SignatureConfig

    config = _shopify()
    assert SHOP_SECRET not in repr(config)
    assert SHOP_SECRET not in str(config.model_dump())
    bad = "whsec_not*base64*at-all-TOPSECRET"
    with pytest.raises(ValidationError) as info:
        Parent.model_validate({"signature": {"scheme": "standard-webhooks", "secret": bad}})
    assert "TOPSECRET" not in str(info.value)
    assert "not whsec_ followed by base64" in str(info.value)
    with pytest.raises(ValidationError) as info:
        Parent.model_validate(
            {
                "signature": {
                    "scheme": "hmac-sha256",
                    "header": "X",
                    "encoding": "hex",
                    "secret": "TOPSECRET",
                    "typo_field": 1,
                }
            }
        )
    assert "TOPSECRET" not in str(info.value)


def test_empty_secrets_are_rejected() -> None:
    with pytest.raises(ValidationError):
        HmacSignature(header="X-Sig", encoding="hex", secret=SecretStr(""))
    with pytest.raises(ValidationError):
        StandardWebhooksSignature(secret=SecretStr("whsec_"))


# --- Standard Webhooks ------------------------------------------------------------------


def _sw(tolerance: int = 300) -> StandardWebhooksSignature:
    return StandardWebhooksSignature(secret=SecretStr(WHSEC), tolerance_seconds=tolerance)


def test_standard_webhooks_signature_verifies() -> None:
    headers = sign_standard_webhooks(WHSEC, "msg_2Lh9KRb0pzN4LePd", NOW, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-timestamp"] == str(int(NOW))
    assert headers["webhook-signature"].startswith("v1,")
    verify(_sw(), headers, BODY, now=NOW)
    verify(_sw(), {k.title(): v for k, v in headers.items()}, BODY, now=NOW)


def test_standard_webhooks_signs_id_timestamp_and_body() -> None:
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    content = b"msg_1." + str(int(NOW)).encode() + b"." + BODY
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    headers = sign_standard_webhooks(WHSEC, "msg_1", NOW, BODY)
    assert headers["webhook-signature"] == "v1," + expected


def test_standard_webhooks_interop_with_official_package() -> None:
    official = Webhook(WHSEC)
    now = time.time()
    # Ours verifies with theirs.
    ours = sign_standard_webhooks(WHSEC, "msg_ours", now, BODY)
    assert official.verify(BODY, ours) == {
        "id": 820982911946154508,
        "email": "jon@example.com",
        "total_price": "199.00",
    }
    # Theirs verifies with ours.
    ts = datetime.fromtimestamp(int(now), tz=UTC)
    theirs = {
        "webhook-id": "msg_theirs",
        "webhook-timestamp": str(int(now)),
        "webhook-signature": official.sign("msg_theirs", ts, BODY.decode()),
    }
    verify(_sw(), theirs, BODY)
    assert (
        theirs["webhook-signature"]
        == sign_standard_webhooks(WHSEC, "msg_theirs", int(now), BODY)["webhook-signature"]
    )
    # And both reject the same tampering.
    tampered = BODY.replace(b"199.00", b"0.01")
    with pytest.raises(WebhookVerificationError):
        official.verify(tampered, ours)
    with pytest.raises(SignatureError):
        verify(_sw(), theirs, tampered)


def test_secret_without_whsec_prefix_or_padding_matches_the_official_package() -> None:
    raw = base64.b64encode(b"a-secret-of-25-bytes-long").decode()  # has "=" padding
    now = time.time()
    for variant in (raw, raw.rstrip("="), "whsec_" + raw.rstrip("=")):
        ours = sign_standard_webhooks(variant, "msg_1", now, BODY)
        Webhook(variant).verify(BODY, ours)
        verify(StandardWebhooksSignature(secret=SecretStr(variant)), ours, BODY)


def test_expired_standard_webhooks_timestamp_is_rejected() -> None:
    headers = sign_standard_webhooks(WHSEC, "msg_1", NOW - 301, BODY)
    assert _reason(_sw(), headers) == "timestamp outside the 5-minute tolerance"


def test_standard_webhooks_timestamp_from_the_future_is_rejected() -> None:
    headers = sign_standard_webhooks(WHSEC, "msg_1", NOW + 301, BODY)
    assert _reason(_sw(), headers) == "timestamp outside the 5-minute tolerance"


def test_standard_webhooks_timestamp_at_the_edge_of_the_tolerance_passes() -> None:
    verify(_sw(), sign_standard_webhooks(WHSEC, "m", NOW - 300, BODY), BODY, now=NOW)
    verify(_sw(), sign_standard_webhooks(WHSEC, "m", NOW + 300, BODY), BODY, now=NOW)


def test_custom_tolerance_is_named_in_the_reason() -> None:
    headers = sign_standard_webhooks(WHSEC, "msg_1", NOW - 31, BODY)
    assert _reason(_sw(30), headers) == "timestamp outside the 30-second tolerance"
    assert _reason(_sw(600), sign_standard_webhooks(WHSEC, "m", NOW - 601, BODY)) == (
        "timestamp outside the 10-minute tolerance"
    )


def test_standard_webhooks_uses_the_clock_when_now_is_not_given() -> None:
    verify(_sw(), sign_standard_webhooks(WHSEC, "m", time.time(), BODY), BODY)
    with pytest.raises(SignatureError):
        verify(_sw(), sign_standard_webhooks(WHSEC, "m", time.time() - 3600, BODY), BODY)


def test_any_one_matching_standard_webhooks_signature_passes() -> None:
    old_secret = "whsec_" + base64.b64encode(b"old-secret-old-secret-24").decode()
    mine = sign_standard_webhooks(WHSEC, "msg_1", NOW, BODY)["webhook-signature"]
    old = sign_standard_webhooks(old_secret, "msg_1", NOW, BODY)["webhook-signature"]
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW)),
        "webhook-signature": f"v1a,c29tZSBlZDI1NTE5 {old} {mine}",
    }
    verify(_sw(), headers, BODY, now=NOW)
    headers["webhook-signature"] = f"{old} v1a,c29tZSBlZDI1NTE5"
    assert _reason(_sw(), headers) == "signature does not match the body"


def test_tampered_standard_webhooks_id_timestamp_or_body_fails() -> None:
    headers = sign_standard_webhooks(WHSEC, "msg_1", NOW, BODY)
    assert _reason(_sw(), headers, BODY + b" ") == "signature does not match the body"
    assert _reason(_sw(), {**headers, "webhook-id": "msg_2"}) == (
        "signature does not match the body"
    )
    later = {**headers, "webhook-timestamp": str(int(NOW) + 1)}
    assert _reason(_sw(), later) == "signature does not match the body"


def test_missing_standard_webhooks_headers_are_named() -> None:
    headers = sign_standard_webhooks(WHSEC, "msg_1", NOW, BODY)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in headers.items() if k != name}
        assert _reason(_sw(), partial) == f"missing header {name}"


def test_malformed_standard_webhooks_headers_are_reported() -> None:
    headers = sign_standard_webhooks(WHSEC, "msg_1", NOW, BODY)
    assert _reason(_sw(), {**headers, "webhook-signature": "deadbeef"}) == (
        "malformed signature header"
    )
    assert _reason(_sw(), {**headers, "webhook-signature": "v1,@@not-base64@@"}) == (
        "malformed signature header"
    )
    assert _reason(_sw(), {**headers, "webhook-timestamp": "yesterday"}) == (
        "malformed header webhook-timestamp"
    )
    # Only signatures of other versions: nothing we can check, so nothing matches.
    assert _reason(_sw(), {**headers, "webhook-signature": "v2,AAAA"}) == (
        "signature does not match the body"
    )
