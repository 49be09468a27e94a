"""``palabre new-method SLUG``: a method package that installs and passes its tests as written.

The files come from the ``*.tmpl`` templates beside this module, filled in
with :class:`string.Template` (``${slug}``, ``${title}``, ``${class_name}``,
``${package}``, ``${distribution}``). The method they make is the idea box
of ``docs/plugins.md`` (a test keeps the two the same), to be changed into
the organiser's own method.
"""

from __future__ import annotations

import string
from pathlib import Path

import click

from ..plugin_host import SLUG

TEMPLATES = Path(__file__).parent


def names(slug: str, title: str | None = None) -> dict[str, str]:
    """What the templates are filled in with, for a method ``slug``."""
    return {
        "slug": slug,
        "title": title or slug.replace("_", " ").capitalize(),
        "class_name": "".join(part.capitalize() for part in slug.split("_")),
        "package": f"palabre_{slug}",
        "distribution": f"palabre-{slug.replace('_', '-')}",
    }


def files(slug: str, title: str | None = None) -> dict[str, str]:
    """The package's files for ``slug``: ``{relative path: text}``."""
    values = names(slug, title)
    package, slug = values["package"], values["slug"]
    where = {
        "pyproject.toml.tmpl": "pyproject.toml",
        "README.md.tmpl": "README.md",
        "package/__init__.py.tmpl": f"{package}/__init__.py",
        "tests/test_method.py.tmpl": f"tests/test_{slug}.py",
        **{
            f"package/templates/{view}.html.tmpl": f"{package}/templates/{slug}/{view}.html"
            for view in ("participant", "facilitator", "projector", "report")
        },
    }
    made = {
        target: string.Template((TEMPLATES / source).read_text(encoding="utf-8")).substitute(values)
        for source, target in where.items()
    }
    made[f"{package}/translations/README.md"] = (
        f"Translations of {values['title']}: one folder per language, "
        "`<lang>/LC_MESSAGES/messages.po`, compiled to `messages.mo` (see Palabre's "
        "docs/plugins.md, Translations).\n"
    )
    return made


@click.command("new-method")
@click.argument("slug")
@click.option("--title", default=None, help="The method's name, e.g. 'Dot survey'.")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where the package's folder is made.",
)
def new_method_command(slug: str, title: str | None, directory: Path) -> None:
    """Make a pip-installable method package, SLUG (e.g. dot_survey), with its tests."""
    if not SLUG.match(slug):
        raise click.BadParameter(
            "2 to 40 lowercase letters, digits or underscores, starting with a letter",
            param_hint="SLUG",
        )
    target = directory / names(slug, title)["distribution"]
    if target.exists():
        raise click.ClickException(f"{target} exists already: nothing was written.")
    for path, text in files(slug, title).items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text, encoding="utf-8")
    click.echo(
        f"Made {target}/. Next:\n"
        f"  pip install -e '{target}[test]'\n"
        f"  pytest {target}\n"
        "  palabre plugins"
    )
