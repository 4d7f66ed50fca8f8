"""Settings of an Odoo connection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from crossdock.sdk.settings import Settings

__all__ = ["OdooSettings"]


class OdooSettings(Settings):
    """Where the Odoo server is and how to talk to it.

    ``api``: ``json2`` (Odoo 19+, ``POST /json/2/<model>/<method>`` with a bearer API
    key), ``jsonrpc`` (``/jsonrpc`` ``execute_kw``, the API key used as the password of
    ``login``; deprecated since 19.0, removal planned for Odoo 22) or ``auto`` (JSON-2,
    falling back to JSON-RPC when the server has no ``/json/2``; the choice is remembered).
    """

    base_url: str = Field(min_length=1, description="The Odoo server root URL.")
    database: str = Field("", description="The database name (X-Odoo-Database / execute_kw).")
    api_key: SecretStr = Field(description="An Odoo API key (Preferences > Account Security).")
    login: str = Field("", description="The API user's login (JSON-RPC only).")
    api: Literal["auto", "json2", "jsonrpc"] = "auto"
    company_id: int | None = None
    journal_id: int | None = Field(None, description="Sales journal for invoices.")
    pricelist_id: int | None = None
    tax_map: dict[str, int] = Field(
        default_factory=dict,
        description="Canonical tax title or rate ('VAT 20%', '0.2') -> account.tax id. "
        "Empty: Odoo applies the products' default taxes.",
    )
    shipping_sku: str | None = Field(
        None, description="Internal reference of a service product for shipping charges."
    )
    location_map: dict[str, str] = Field(
        default_factory=dict,
        description="Odoo location (e.g. 'WH/Stock') -> the hub's location code (e.g. 'WH1').",
    )
    page_size: int = Field(200, ge=1, le=5000)
    timeout_seconds: float = Field(30.0, gt=0)
