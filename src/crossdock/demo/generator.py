"""Realistic storefront orders for the demo and the chain tests, a few of them meant to
fail for business reasons an operations person will recognise."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from crossdock.emulators.catalog import CATALOG

__all__ = ["FAILURE_KINDS", "OrderSpec", "make_order"]

_NAMES = [
    ("Ayşe", "Yılmaz", "Istanbul", "34000", "TR", "Bağdat Cd. 12", "34"),  # noqa: RUF001
    ("Jonas", "Becker", "Berlin", "10115", "DE", "Invalidenstr. 7", "BE"),
    ("Chloé", "Martin", "Lyon", "69002", "FR", "12 Rue de la République", "ARA"),
    ("Emma", "Jansen", "Rotterdam", "3011", "NL", "Coolsingel 40", "ZH"),
    ("Liam", "Walsh", "Dublin", "D02 X285", "IE", "5 Grafton St", "D"),
    ("Sofia", "Rossi", "Milano", "20121", "IT", "Via Dante 3", "MI"),
    ("Noah", "Smith", "Austin", "78701", "US", "600 Congress Ave", "TX"),
    ("Olivia", "Brown", "Toronto", "M5H 2N2", "CA", "100 Queen St W", "ON"),
]

FAILURE_KINDS = ("unknown_sku", "no_postal_code", "too_heavy")
"""Orders that end as exceptions: a SKU the warehouse does not know; a ship-to address
without a postal code (no carrier label); a 50 kg anvil (carriers refuse the parcel)."""

_SELLABLE = [c for c in CATALOG if c.sku not in ("ANVIL-50KG", "RARE-VINYL")]


@dataclass
class OrderSpec:
    """One order to place at the storefront emulator, and why it will fail (if so)."""

    body: dict[str, Any]
    failure: str | None = None


def make_order(rng: random.Random, n: int, failure: str | None = None) -> OrderSpec:
    """Order ``n`` (``failure``: one of :data:`FAILURE_KINDS` or None)."""
    first, last, city, postal, country, street, province = rng.choice(_NAMES)
    if failure == "no_postal_code":
        # Where every carrier and warehouse needs one.
        first, last, city, postal, country, street, province = _NAMES[6]
    lines = [
        {"sku": item.sku, "quantity": rng.randint(1, 3)}
        for item in rng.sample(_SELLABLE, rng.randint(1, 3))
    ]
    address: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "address1": street,
        "city": city,
        "zip": postal,
        "country_code": country,
        "province_code": province,
        "phone": "+1 512 555 01" + f"{n % 100:02d}",
    }
    if failure == "unknown_sku":
        lines.append({"sku": "GHOST-1", "quantity": 1})
    elif failure == "no_postal_code":
        address.pop("zip")
    elif failure == "too_heavy":
        lines = [{"sku": "ANVIL-50KG", "quantity": 1}]
    email = f"{first.lower()}.{last.lower()}.{n}@example.com".encode("ascii", "ignore").decode()
    body = {
        "email": email,
        "lines": lines,
        "shipping_address": address,
        "billing_address": address,
        "financial_status": "paid",
        "currency": "EUR",
    }
    return OrderSpec(body, failure)
