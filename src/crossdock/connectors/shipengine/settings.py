"""ShipEngine connection settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from crossdock.model import Address
from crossdock.sdk import Settings

__all__ = ["ShipEngineSettings"]


class ShipEngineSettings(Settings):
    """One ShipEngine account.

    ``carrier_id`` is the carrier account labels are bought from (``se-...``);
    ``default_service_code`` is used when a shipment names no service; ``ship_from`` is
    the warehouse address used when a shipment has none (ShipEngine needs its phone).
    ``jwks_url`` is where webhook signing keys are published (default: ``{base_url}/jwks``;
    ShipEngine's own is ``https://api.shipengine.com/jwks`` [3P]).
    """

    base_url: str = "https://api.shipengine.com"
    api_key: SecretStr
    carrier_id: str = Field(pattern=r"^se(-[a-z0-9]+)+$")
    default_service_code: str = "usps_priority_mail"
    ship_from: Address | None = None
    label_format: str = Field(default="pdf", pattern="^(pdf|png|zpl)$")
    label_layout: str = Field(default="4x6", pattern="^(4x6|letter|A4|A6)$")
    test_label: bool = False
    jwks_url: str | None = None
    webhook_tolerance_seconds: float = 300.0
    jwks_cache_seconds: float = 3600.0
    tracking_lookback_days: int = Field(default=30, ge=1, le=365)
    page_size: int = Field(default=100, ge=1, le=500)
    requests_per_minute: int = Field(default=200, ge=1)
    timeout_seconds: float = 30.0
