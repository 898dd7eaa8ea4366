"""Name registries: lazy factories resolve on use, plain callables keep working."""

from __future__ import annotations

import pytest

from cxrkit.registry import LazyFactory, Registry


def test_lazy_factory_imports_its_target_when_called():
    factory = LazyFactory("fractions:Fraction", "A rational number.")
    assert factory.__doc__ == "A rational number."
    assert str(factory(3, 6)) == "1/2"
    assert repr(factory) == "LazyFactory('fractions:Fraction')"


def test_lazy_factory_rejects_a_target_without_an_attribute():
    with pytest.raises(ValueError, match=r"target 'fractions' must look like"):
        LazyFactory("fractions")


def test_registry_resolves_lazy_factories_and_meta_on_get_only():
    reg = Registry("widget")
    reg.add(
        "frac",
        LazyFactory("fractions:Fraction", "A rational number."),
        plugin="p",
        default=LazyFactory("fractions:Fraction"),
    )
    reg.add("plain", lambda **kw: kw, plugin="q", description="A plain callable.")
    listed = {e.name: e for e in reg}
    assert isinstance(listed["frac"].factory, LazyFactory)  # listing imports nothing
    assert [listed["frac"].summary, listed["plain"].summary] == [
        "A rational number.",
        "A plain callable.",
    ]
    entry = reg.get("frac")
    from fractions import Fraction

    assert entry.factory is Fraction and entry.meta["default"] is Fraction
    assert reg.create("plain", a=1) == {"a": 1}


def test_pattern_entries_resolve_lazily_too():
    reg = Registry("widget")
    reg.add("join:*", LazyFactory("os.path:join"), plugin="p")
    assert reg.create("join:a") == "a"


def test_a_resolved_entry_keeps_the_lazy_description():
    reg = Registry("widget")
    reg.add("frac", LazyFactory("fractions:Fraction", "A rational number."), plugin="p")
    assert reg.get("frac").summary == "A rational number."
