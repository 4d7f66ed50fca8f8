"""Mappers between vendor payloads and canonical records, and lookup tables.

After OCA/connector's mappers: a :class:`Mapper` declares ``direct`` field pairs
(source dotted path -> target key), :func:`mapping` methods for the hard fields (each
returns a dict merged into the result), and ``children`` for lines (a source list
mapped item by item by another mapper). The same machinery maps both ways::

    class ShopifyLine(Mapper):
        direct = (("sku", "sku"), ("title", "name"), ("quantity", "quantity"))

        @mapping
        def price(self, src):
            return {"unit_price": {"amount": src["price"], "currency": self.ctx["currency"]}}

    class ShopifyOrder(Mapper):
        direct = (("id", "id"), ("name", "number"))
        children = (("line_items", "lines", ShopifyLine),)

``ctx`` carries what a child needs from its parent (the currency, the connection).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from crossdock.sdk.errors import ActionRefused
from crossdock.sdk.pagination import dig

__all__ = ["LookupTable", "Mapper", "mapping"]

F = TypeVar("F", bound=Callable[..., Any])


def mapping(method: F) -> F:
    """Mark a mapper method: it takes the source and returns target fields."""
    method.__crossdock_mapping__ = True  # type: ignore[attr-defined]
    return method


class Mapper:
    """Maps one source object to one target dict (see the module docstring)."""

    direct: ClassVar[tuple[tuple[str, str], ...]] = ()
    children: ClassVar[tuple[tuple[str, str, type[Mapper]], ...]] = ()

    def __init__(self, ctx: Mapping[str, Any] | None = None) -> None:
        self.ctx: dict[str, Any] = dict(ctx or {})

    def _methods(self) -> list[Callable[[Any], Any]]:
        out = []
        for name in dir(type(self)):
            attr = getattr(type(self), name, None)
            if callable(attr) and getattr(attr, "__crossdock_mapping__", False):
                out.append(getattr(self, name))
        return out

    def map(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """The target dict: direct pairs, then children, then mapping methods (which
        win). ``None`` values are left out."""
        out: dict[str, Any] = {}
        for src, dst in self.direct:
            value = dig(source, src)
            if value is not None:
                out[dst] = value
        for src, dst, child in self.children:
            items = dig(source, src) or []
            mapper = child({**self.ctx, "parent": source})
            out[dst] = [mapper.map(item) for item in items if isinstance(item, Mapping)]
        for method in self._methods():
            produced = method(source)
            if produced:
                out.update({k: v for k, v in produced.items() if v is not None})
        return out


class LookupTable:
    """A translation table (SKU -> item code, shipping method -> carrier service).

    A missing key raises :class:`ActionRefused` with category ``lookup`` and a reason
    naming the table and the value, so the exception queue can group the cases and an
    operator can add the value and replay.
    """

    def __init__(
        self, name: str, entries: Mapping[Any, Any], *, default: Any = None, what: str = "value"
    ) -> None:
        self.name = name
        self.entries = {str(k): v for k, v in entries.items()}
        self.default = default
        self.what = what

    def get(self, key: Any) -> Any:
        """The translation of ``key``; the default or an :class:`ActionRefused`."""
        k = str(key)
        if k in self.entries:
            return self.entries[k]
        if self.default is not None:
            return self.default
        raise ActionRefused(
            "lookup",
            f"The {self.what} '{k}' is not in the lookup table '{self.name}'.",
            f"Add '{k}' to the '{self.name}' table, then retry the affected deliveries.",
        )
