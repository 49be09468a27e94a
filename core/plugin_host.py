"""The plugin host: which plugins load, and the methods they declare.

Built-in plugins are listed in :data:`BUILTIN_PLUGINS`; installed packages
add theirs through the entry-point group :data:`ENTRY_POINT_GROUP`. Each
installed plugin is loaded on its own: one that fails to import, implements
a hook that does not exist, or declares an invalid method is logged with its
distribution's name and skipped, and everything else starts as usual (a
live evening never stops for someone else's plugin). ``palabre plugins``
lists what loaded and what failed. A built-in plugin or one passed to
:func:`palabre.create_app` in code that fails raises at once: that is a bug to
fix, not a guest to tolerate.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import click
import pluggy
from flask import current_app
from flask.cli import with_appcontext

from . import hookspecs
from .methods import VOTE, Method

#: Plugins shipped with Palabre, loaded in this order.
BUILTIN_PLUGINS = (
    "palabre.plugins.world_cafe",
    "palabre.plugins.forum_theatre",
    "palabre.plugins.citizen_dialogue",
    "palabre.plugins.mystery_shopping",
)

#: Entry-point group through which installed packages add methods.
ENTRY_POINT_GROUP = "palabre.methods"

#: What a method's slug looks like: it is used in URLs, phase ids and the database.
SLUG = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

#: The templates every method provides, under ``templates/<slug>/``.
REQUIRED_VIEWS = ("participant", "facilitator", "projector", "report")

log = logging.getLogger(__name__)


class InvalidMethod(ValueError):
    """A method declaration that breaks the plugin contract; the message says how."""


@dataclass
class LoadedPlugin:
    """A plugin the host registered: its name, where it came from, its methods' slugs."""

    name: str
    source: str
    methods: list[str] = field(default_factory=list)


@dataclass
class FailedPlugin:
    """An installed plugin that was skipped, and why."""

    name: str
    source: str
    error: str


@dataclass
class PluginHost:
    """What the app keeps in ``app.extensions["palabre"]``."""

    pm: pluggy.PluginManager
    methods: dict[str, Method]
    loaded: list[LoadedPlugin] = field(default_factory=list)
    failed: list[FailedPlugin] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)

    @property
    def hook(self):
        return self.pm.hook

    def notify(self, hook_name: str, **kwargs) -> list:
        """Call each implementation of a hook on its own; return their non-``None`` results.

        For the observer hooks, called after a commit, and for hooks called
        at start-up: an implementation that raises is logged with its
        plugin's name and the others still run, so a plugin's bug never
        costs a phone its acknowledgement or the app its start.
        """
        results = []
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # pluggy's own calling order
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception:  # noqa: BLE001 (logged; the change it observes is done)
                log.exception("Plugin %r failed in hook %s", impl.plugin_name, hook_name)
                continue
            if result is not None:
                results.append(result)
        return results


def build_plugin_host(extra_plugins=(), disabled=()) -> PluginHost:
    """Load built-in, installed and ``extra_plugins``, then their methods.

    ``extra_plugins`` are modules or objects with hook implementations (tests
    and embedding code use it). ``disabled`` names entry points or
    distributions not to load. An installed plugin that fails is logged and
    recorded in :attr:`PluginHost.failed`; a built-in or extra one raises
    :class:`pluggy.PluginValidationError` (a hook that does not exist) or
    :class:`InvalidMethod`.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm, methods={})
    for name in BUILTIN_PLUGINS:
        _register(host, importlib.import_module(name), name, "built-in")
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        source = _distribution(entry_point)
        if {entry_point.name, source.split(" ")[0]} & set(disabled):
            host.disabled.append(f"{entry_point.name} ({source})")
            continue
        if pm.has_plugin(entry_point.name):
            continue  # also passed in extra_plugins, or listed twice
        try:
            _register(host, entry_point.load(), entry_point.name, source)
        except Exception as error:  # noqa: BLE001 (any failure of a guest plugin)
            message = f"{type(error).__name__}: {error}"
            log.error("Plugin %r from %s was not loaded: %s", entry_point.name, source, message)
            host.failed.append(FailedPlugin(entry_point.name, source, message))
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin)}"
        if pm.is_registered(plugin):
            continue  # an installed plugin also passed in code: already there
        if pm.has_plugin(name):
            pm.unregister(name=name)  # the same package installed: the one given in code wins
            host.loaded = [p for p in host.loaded if p.name != name]
        _register(host, plugin, name, "passed to create_app")
    return host


def _register(host: PluginHost, plugin, name: str, source: str) -> None:
    """Register one plugin and its methods, or leave no trace of it and raise."""
    host.pm.register(plugin, name=name)
    try:
        host.pm.check_pending()
        methods = _declared_methods(host.pm, name)
        for method in methods:
            check_method(method)
            if method.slug in host.methods:
                raise InvalidMethod(f"method slug {method.slug!r} is already used")
    except Exception:
        host.pm.unregister(name=name)
        raise
    for method in methods:
        host.methods[method.slug] = method
    host.loaded.append(LoadedPlugin(name, source, [m.slug for m in methods]))


def _declared_methods(pm: pluggy.PluginManager, name: str) -> list[Method]:
    """The methods the plugin registered as ``name`` returns from ``register_methods``."""
    methods = []
    for impl in pm.hook.register_methods.get_hookimpls():
        if impl.plugin_name == name:
            methods.extend(method_class() for method_class in impl.function() or ())
    return methods


def _distribution(entry_point) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


def check_method(method: Method) -> None:
    """Raise :class:`InvalidMethod` when ``method`` breaks the plugin contract.

    Checked when a plugin registers, with the method's default configuration:
    the slug's form, phase ids prefixed with the slug, at least an opening and
    a closing phase, every ``contribute:<kind>`` naming a declared kind,
    votable kinds declared, and the four templates present.
    """
    label = f"method {method.slug!r} ({type(method).__module__}.{type(method).__name__})"
    if not SLUG.match(method.slug or ""):
        raise InvalidMethod(
            f"{label}: the slug must be 2 to 40 lowercase letters, digits or underscores, "
            "starting with a letter"
        )
    phases = method.phases(method.default_config())
    if len(phases) < 2:
        raise InvalidMethod(f"{label}: needs at least an opening and a closing phase")
    kinds = set(method.contribution_kinds)
    for phase in phases:
        if not phase.id.startswith(f"{method.slug}:") or not phase.name:
            raise InvalidMethod(f"{label}: phase id {phase.id!r} must be '{method.slug}:<name>'")
        for feature in phase.allows:
            kind = feature.removeprefix("contribute:")
            if feature != VOTE and (kind == feature or kind not in kinds):
                raise InvalidMethod(
                    f"{label}: phase {phase.id!r} allows {feature!r}, which names no "
                    f"declared contribution kind (declared: {sorted(kinds)})"
                )
    for name, kind in method.contribution_kinds.items():
        if kind.name != name:
            raise InvalidMethod(f"{label}: contribution kind {name!r} is named {kind.name!r}")
    if unknown := set(method.votable_kinds) - kinds:
        raise InvalidMethod(f"{label}: votable kinds {sorted(unknown)} are not declared")
    missing = [
        view
        for view in REQUIRED_VIEWS
        if not (method.template_folder / method.template(view)).is_file()
    ]
    if missing:
        raise InvalidMethod(
            f"{label}: templates missing in {method.template_folder}: "
            + ", ".join(method.template(view) for view in missing)
        )


@click.command("plugins")
@with_appcontext
def plugins_command() -> None:
    """List the plugins that loaded, where from, their methods, and those that failed."""
    host = plugin_host()
    click.echo("Loaded:")
    for plugin in host.loaded:
        methods = ", ".join(plugin.methods) or "no method"
        click.echo(f"  {plugin.name}  [{plugin.source}]  methods: {methods}")
    if host.disabled:
        click.echo("Disabled (DISABLED_PLUGINS):")
        for name in host.disabled:
            click.echo(f"  {name}")
    if host.failed:
        click.echo("Failed, not loaded:")
        for plugin in host.failed:
            click.echo(f"  {plugin.name}  [{plugin.source}]  {plugin.error}")


def plugin_host() -> PluginHost:
    """The current app's plugin host."""
    return current_app.extensions["palabre"]


def get_method(slug: str) -> Method:
    """The method registered under ``slug``; ``KeyError`` if there is none."""
    return plugin_host().methods[slug]
