"""The built wheel, installed outside the checkout, serves every page, file and PDF.

A checkout finds templates, static files and translations beside the code;
an installed package must carry them. This builds the wheel with pip,
installs it into a new virtual environment that borrows only the test
environment's third-party libraries (not its editable Palabre), and runs a
real ``palabre serve`` from there, in a folder far from the checkout.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from pypdf import PdfReader

from palabre.testing import Browser, Facilitator, served_palabre

ROOT = Path(__file__).resolve().parent.parent


def run(*argv, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def palabre_in(installed: Path, tmp_path: Path, *args, check: bool = True):
    """Run the installed ``palabre`` command, on an instance folder in ``tmp_path``."""
    argv = [installed / "palabre", *args]
    env = {"PALABRE_INSTANCE": str(tmp_path / "instance"), "PATH": "/usr/bin:/bin"}
    if check:
        return run(*argv, cwd=tmp_path, env=env)
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=tmp_path, env=env
    )


def install_method(installed: Path, tmp_path: Path, package: Path) -> str:
    """pip-install a method package into the wheel's environment; returns ``palabre plugins``."""
    target = next((installed.parent / "lib").glob("python*/site-packages"))
    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, package)
    return palabre_in(installed, tmp_path, "plugins").stdout


def run_its_tests(installed: Path, package: Path, tests="tests") -> str:
    """A method package's own tests, run by the wheel's environment; returns pytest's output."""
    return run(
        installed / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", tests, cwd=package
    ).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment with the wheel installed; returns its ``bin`` folder."""
    if not (ROOT / "core" / "static" / "vendor" / "socket.io.min.js").exists():
        pytest.fail("the Socket.IO client is missing from core/static/vendor: run scripts/setup")
    work = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", ROOT)
    (wheel,) = (work / "dist").glob("palabre-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    packages = next((env_dir / "lib").glob("python*/site-packages"))
    # The libraries Palabre needs, from the test environment; a plain path, so
    # that the editable install's finder (a .pth file there) is not loaded.
    (packages / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", packages, wheel)
    bin_dir = env_dir / "bin"
    # pip --target puts console scripts in <target>/bin: give the venv its own.
    (bin_dir / "palabre").write_text(
        f"#!{bin_dir / 'python'}\nfrom palabre.cli import main\nmain()\n"
    )
    (bin_dir / "palabre").chmod(0o755)
    return bin_dir


def test_the_installed_package_is_not_the_checkout(installed, tmp_path):
    where = run(
        installed / "python", "-c", "import palabre, sys; print(palabre.__file__)", cwd=tmp_path
    ).stdout
    assert str(ROOT) not in where and "site-packages/palabre/__init__.py" in where
    listed = palabre_in(installed, tmp_path, "plugins").stdout
    assert "palabre.plugins.world_cafe  [built-in]  methods: world_cafe" in listed


def test_the_installed_built_in_methods_carry_their_compiled_catalogs(installed, tmp_path):
    script = (
        "import pathlib, palabre.plugins.world_cafe as cafe, palabre.plugins.forum_theatre as ft;"
        "print(sorted(str(p.relative_to(pathlib.Path(m.__file__).parent.parent))"
        " for m in (cafe, ft)"
        " for p in pathlib.Path(m.__file__).parent.glob('translations/*/*/*.mo')))"
    )
    listed = run(installed / "python", "-c", script, cwd=tmp_path).stdout
    for method in ("world_cafe", "forum_theatre"):
        for language in ("fr", "ar"):
            assert f"{method}/translations/{language}/LC_MESSAGES/messages.mo" in listed


def test_the_installed_package_serves_pages_files_translations_and_pdfs(installed, tmp_path):
    with served_palabre(tmp_path, command=[str(installed / "palabre")]) as server:
        server.create_facilitator()

        async def visit():
            async with Facilitator(server.url) as facilitator:
                await facilitator.sign_in()
                session = await facilitator.start_session(
                    "world_cafe", {"tables": 2, "questions": "What helped you?"}
                )
                for path in (
                    "/static/palabre.css",
                    "/static/live.js",
                    "/static/vendor/socket.io.min.js",
                ):
                    page = await facilitator.get(path)
                    assert page.status == 200 and len(page.text) > 1000, path
                run_page = await facilitator.get(f"/sessions/{session.id}")
                # The shared layout and the method's own template, with its plan of phases.
                assert session.code in run_page.text and "Round 1" in run_page.text
                poster = await facilitator.http.get(
                    f"{server.url}/print/sessions/{session.id}/poster.pdf"
                )
                assert poster.status == 200
                pdf = PdfReader(io.BytesIO(await poster.read()))
                assert session.code in "".join(page.extract_text() for page in pdf.pages)
            async with Browser(server.url, "phone") as phone:
                french = await phone.get(f"/j/{session.code}", headers={"Accept-Language": "fr"})
                assert french.status == 200 and "Votre langue" in french.text

        asyncio.run(visit())


def test_a_new_method_installs_and_passes_its_own_tests(installed, tmp_path):
    """``palabre new-method`` makes a package that pip installs and whose tests pass unchanged."""
    made = palabre_in(installed, tmp_path, "new-method", "dot_survey", "--title", "Dot survey")
    package = tmp_path / "palabre-dot-survey"
    assert f"Made {package.name}/" in made.stdout
    listed = install_method(installed, tmp_path, package)
    assert "dot_survey  [palabre-dot-survey 0.1.0]  methods: dot_survey" in listed
    assert "3 passed" in run_its_tests(installed, package)
    again = palabre_in(installed, tmp_path, "new-method", "dot_survey", check=False)
    assert again.returncode != 0 and "exists already" in again.stderr


def test_the_survey_example_installs_through_its_entry_point_and_passes_its_tests(
    installed, tmp_path
):
    """``examples/palabre-survey``, a third-party method, works from a plain ``pip install``."""
    # Built from a copy: a build in place would leave build/ and *.egg-info in the checkout.
    package = tmp_path / "palabre-survey"
    shutil.copytree(
        ROOT / "examples" / "palabre-survey",
        package,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"),
    )
    listed = install_method(installed, tmp_path, package)
    assert "survey  [palabre-survey 0.1.0]  methods: survey" in listed
    # Its tests run against the installed copy, templates and static files included.
    shutil.rmtree(package / "palabre_survey")
    tested = run_its_tests(installed, package)
    assert re.search(r"\d+ passed", tested) and "skipped" not in tested


def test_new_method_refuses_a_bad_slug(installed, tmp_path):
    refused = palabre_in(installed, tmp_path, "new-method", "Dot Survey", check=False)
    assert refused.returncode == 2 and "lowercase letters" in refused.stderr
    assert not any(tmp_path.glob("palabre-*"))
