"""The connector registry: built-in names, and third-party packages via entry points."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossdock.sdk import registry
from crossdock.sdk.connector import Connector
from crossdock.sdk.errors import UnknownConnector

PLUGIN_MODULE = "crossdock_testplugin_mywms"


@pytest.fixture
def clean_registry() -> Iterator[None]:
    registry._plugins.cache_clear()
    registry.get_connector.cache_clear()
    yield
    registry._plugins.cache_clear()
    registry.get_connector.cache_clear()
    for name in list(sys.modules):
        if name.startswith(PLUGIN_MODULE):
            del sys.modules[name]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None) -> Path:
    """An installed third-party package: a module and its dist-info with entry points."""
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(
        textwrap.dedent(
            """
            from crossdock.sdk.connector import Connector
            from crossdock.sdk.settings import Settings


            class MyWmsSettings(Settings):
                base_url: str = "http://wms"


            class MyWmsConnector(Connector):
                name = "mywms"
                title = "My WMS"
                kind = "wms"
                api_version = "v1"
                settings_model = MyWmsSettings


            class Namespace:
                Nested = MyWmsConnector


            NOT_A_CONNECTOR = 42
            """
        )
    )
    dist = tmp_path / "crossdock_mywms-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crossdock-mywms\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [crossdock.connectors]
            mywms = {PLUGIN_MODULE}:MyWmsConnector
            mywms-nested = {PLUGIN_MODULE}:Namespace.Nested
            broken = {PLUGIN_MODULE}:NOT_A_CONNECTOR
            shopify = {PLUGIN_MODULE}:MyWmsConnector

            [some.other.group]
            ignored = {PLUGIN_MODULE}:MyWmsConnector
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtin_connectors_are_listed_by_import_path() -> None:
    assert set(registry.BUILTIN) >= {"shopify", "rest-wms", "shipengine", "odoo"}
    for name, ref in registry.BUILTIN.items():
        module, _, attr = ref.partition(":")
        assert module.startswith("crossdock.connectors."), name
        assert attr and attr[0].isupper(), name


def test_builtin_names_are_available_without_importing_them(clean_registry: None) -> None:
    before = {m for m in sys.modules if m.startswith("crossdock.connectors.")}
    names = registry.available()
    assert set(registry.BUILTIN) <= set(names)
    after = {m for m in sys.modules if m.startswith("crossdock.connectors.")}
    assert after == before  # listing names imports no vendor module


def test_unknown_connector_names_the_known_ones(clean_registry: None) -> None:
    with pytest.raises(UnknownConnector) as err:
        registry.get_connector("no-such-vendor")
    message = str(err.value)
    assert "'no-such-vendor'" in message
    for name in ("http", *registry.BUILTIN):
        assert name in message


def test_entry_point_connector_is_discovered(plugin: Path) -> None:
    names = registry.available()
    assert names["mywms"] == f"{PLUGIN_MODULE}:MyWmsConnector"
    assert "ignored" not in names
    cls = registry.get_connector("mywms")
    assert issubclass(cls, Connector)
    assert cls.name == "mywms" and cls.title == "My WMS"
    assert registry.get_connector("mywms") is cls  # cached
    assert registry.get_connector("mywms-nested") is cls  # dotted attribute path


def test_unknown_name_lists_plugins_too(plugin: Path) -> None:
    with pytest.raises(UnknownConnector) as err:
        registry.get_connector("nope")
    assert "mywms" in str(err.value)


def test_entry_point_that_is_not_a_connector_is_refused(plugin: Path) -> None:
    with pytest.raises(UnknownConnector) as err:
        registry.get_connector("broken")
    assert "is not a Connector class" in str(err.value)
    assert "'broken'" in str(err.value)


def test_builtin_wins_over_a_plugin_of_the_same_name(plugin: Path) -> None:
    assert registry.available()["shopify"] == registry.BUILTIN["shopify"]


def test_load_object_imports_module_attribute_paths(plugin: Path) -> None:
    import json

    assert registry.load_object("json:dumps") is json.dumps
    assert registry.load_object("json") is json
    cls = registry.load_object(f"{PLUGIN_MODULE}:Namespace.Nested")
    assert isinstance(cls, type) and cls.__name__ == "MyWmsConnector"
