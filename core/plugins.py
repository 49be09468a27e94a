"""The plugin host: which plugins load, and the methods they declare."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy
from flask import current_app

from . import hookspecs
from .methods import Method

#: Plugins shipped with Palabre, loaded in this order.
BUILTIN_PLUGINS = ("plugins.world_cafe", "plugins.forum_theatre")

#: Entry-point group through which installed packages add methods.
ENTRY_POINT_GROUP = "palabre.methods"


@dataclass
class PluginHost:
    """What the app keeps in ``app.extensions["palabre"]``."""

    pm: pluggy.PluginManager
    methods: dict[str, Method]

    @property
    def hook(self):
        return self.pm.hook


def build_plugin_host(extra_plugins=()) -> PluginHost:
    """Load built-in, installed and ``extra_plugins``, then their methods.

    ``extra_plugins`` are modules or objects with hook implementations (tests
    and embedding code use it). Raises :class:`pluggy.PluginValidationError`
    when a plugin implements a hook that does not exist, and ``ValueError``
    when two methods share a slug.
    """
    import importlib

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()

    methods: dict[str, Method] = {}
    for declared in pm.hook.register_methods():
        for method_class in declared or ():
            method = method_class()
            if not method.slug or method.slug in methods:
                raise ValueError(f"Method slug {method.slug!r} is empty or used twice")
            methods[method.slug] = method
    return PluginHost(pm=pm, methods=methods)


def plugin_host() -> PluginHost:
    """The current app's plugin host."""
    return current_app.extensions["palabre"]


def get_method(slug: str) -> Method:
    """The method registered under ``slug``; ``KeyError`` if there is none."""
    return plugin_host().methods[slug]
