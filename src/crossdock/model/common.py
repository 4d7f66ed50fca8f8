"""Building blocks shared by every canonical record: money, addresses, people, taxes,
discounts, references to the source system, and timezone-aware timestamps."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

__all__ = [
    "Address",
    "Amount",
    "CanonicalModel",
    "CountryCode",
    "CurrencyCode",
    "Customer",
    "Dimensions",
    "Discount",
    "LengthUnit",
    "Location",
    "Money",
    "OrderRef",
    "SourceRef",
    "TaxLine",
    "Timestamp",
    "Totals",
    "Weight",
    "WeightUnit",
    "require_one_currency",
]

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"


class CanonicalModel(BaseModel):
    """Base of every canonical record and part: unknown fields are rejected, so a typo in
    a mapping is an error instead of a silently dropped value."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --- scalar types -------------------------------------------------------------------------


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"timestamp {value.isoformat()} has no time zone; give an offset or Z, "
            "e.g. 2024-05-01T12:00:00Z or 2024-05-01T15:00:00+03:00"
        )
    return value


Timestamp = Annotated[datetime, AfterValidator(_require_aware)]
"""A datetime that must carry a UTC offset; naive datetimes are rejected."""


def _check_currency(value: str) -> str:
    if not _CURRENCY_RE.fullmatch(value):
        raise ValueError(
            f"currency {value!r} is not an ISO 4217 code: use three upper-case letters, "
            "e.g. 'USD', 'EUR', 'TRY'"
        )
    return value


CurrencyCode = Annotated[
    str,
    AfterValidator(_check_currency),
    WithJsonSchema(
        {"type": "string", "pattern": _CURRENCY_RE.pattern, "description": "ISO 4217 code"}
    ),
]
"""ISO 4217 currency code: three upper-case letters."""


def _check_country(value: str) -> str:
    if not _COUNTRY_RE.fullmatch(value):
        raise ValueError(
            f"country code {value!r} is not ISO 3166-1 alpha-2: use two upper-case letters, "
            "e.g. 'US', 'DE', 'TR'"
        )
    return value


CountryCode = Annotated[
    str,
    AfterValidator(_check_country),
    WithJsonSchema(
        {"type": "string", "pattern": _COUNTRY_RE.pattern, "description": "ISO 3166-1 alpha-2"}
    ),
]
"""ISO 3166-1 alpha-2 country code: two upper-case letters."""


def _reject_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError(
            f"money amount {value!r} is a float, which cannot hold cents exactly; "
            f"pass a string or Decimal, e.g. '{value}'"
        )
    return value


def _fixed_point(value: Decimal) -> Decimal:
    # 1E+2 -> 100, so the JSON string is always plain digits
    return Decimal(format(value, "f"))


Amount = Annotated[
    Decimal,
    BeforeValidator(_reject_float),
    Field(allow_inf_nan=False),
    AfterValidator(_fixed_point),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DECIMAL_PATTERN,
            "description": "decimal amount as a string, e.g. '19.90'",
        }
    ),
]
"""An exact decimal money amount: a string or Decimal in, a string out; floats rejected."""


# --- money --------------------------------------------------------------------------------


class Money(CanonicalModel):
    """An exact amount of one currency. The amount is a `Decimal` (never a float) and is
    serialised to JSON as a string, e.g. `{"amount": "19.90", "currency": "USD"}`."""

    amount: Amount
    currency: CurrencyCode

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def require_one_currency(amounts: list[Money | None], what: str) -> str | None:
    """Check that every given amount is in the same currency; return it (or None)."""
    currencies = sorted({m.currency for m in amounts if m is not None})
    if len(currencies) > 1:
        raise ValueError(f"{what} must share one currency, found {', '.join(currencies)}")
    return currencies[0] if currencies else None


class Totals(CanonicalModel):
    """The totals of an order or invoice. All amounts share one currency."""

    subtotal: Money
    tax: Money
    shipping: Money | None = None
    discount: Money | None = None
    total: Money

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        require_one_currency(
            [self.subtotal, self.tax, self.shipping, self.discount, self.total], "totals"
        )
        return self

    @property
    def currency(self) -> str:
        """The currency of every amount in these totals."""
        return self.total.currency


# --- people and places ----------------------------------------------------------------------


class Address(CanonicalModel):
    """A postal address. Every part is optional because sources often omit some; the
    country, when given, is an ISO 3166-1 alpha-2 code."""

    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country_code: CountryCode | None = None
    phone: str | None = None
    email: str | None = None


class Customer(CanonicalModel):
    """The buyer. `id` is the customer's id in the source system; `tax_id` holds a VAT
    number, a Turkish VKN/TCKN or similar."""

    id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    phone: str | None = None
    tax_id: str | None = None


class Location(CanonicalModel):
    """A place named by a carrier event or a warehouse: city, region, postal code, country."""

    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country_code: CountryCode | None = None


# --- taxes and discounts ----------------------------------------------------------------------


class TaxLine(CanonicalModel):
    """One tax applied to a line, a shipping charge or a whole document. `rate` is a
    fraction: 0.18 means 18 %."""

    title: str
    rate: Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]
    amount: Money


class Discount(CanonicalModel):
    """A reduction of price: an optional code and title, and the amount taken off."""

    code: str | None = None
    title: str | None = None
    amount: Money


# --- references -------------------------------------------------------------------------------


class SourceRef(CanonicalModel):
    """Where a record came from: the connection (e.g. `shopify/acme-store`), the record's
    id in that system, and the source version (e.g. its `updated_at`) used to keep
    per-record order and to derive idempotency keys."""

    connection: str = Field(min_length=1)
    external_id: str = Field(min_length=1)
    version: str | None = None

    @property
    def system(self) -> str:
        """The connector part of the connection name (`shopify` for `shopify/acme-store`)."""
        return self.connection.split("/", 1)[0]


class OrderRef(CanonicalModel):
    """A pointer to an order from a shipment, invoice or return: the order's id in the
    named connection (or the hub's), and its human-facing number."""

    id: str = Field(min_length=1)
    number: str | None = None
    connection: str | None = None


# --- physical measures --------------------------------------------------------------------------


class WeightUnit(StrEnum):
    """Units of weight."""

    G = "g"
    KG = "kg"
    OZ = "oz"
    LB = "lb"


class LengthUnit(StrEnum):
    """Units of length."""

    MM = "mm"
    CM = "cm"
    M = "m"
    IN = "in"
    FT = "ft"


class Weight(CanonicalModel):
    """A weight with its unit."""

    value: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
    unit: WeightUnit


class Dimensions(CanonicalModel):
    """Length, width and height of a parcel, in one unit."""

    length: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    width: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    height: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    unit: LengthUnit
