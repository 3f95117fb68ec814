"""Sessions: tests, lint, typecheck (the default set), docs, soak and bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The soaks: 5,000 clusters under random faults, and the exporter for ten minutes
    (PG_BACKUPS_SOAK_SECONDS sets another duration); each prints what it counted."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "soak", "-s", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", "pg_backups_async")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly: any warning or unresolved reference fails."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build", "-W", "-n", "--keep-going", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks: figures beside baselines from the same run; they assert nothing.

    pydantic, msgspec, and grpcio with yandexcloud (the official SDK's stubs) are
    installed here only, as the peers `cpu.py` measures; never by the library.
    """
    session.install("-e", ".", "pydantic>=2", "msgspec", "grpcio", "yandexcloud")
    for script in (
        "pagesize.py",
        "prefetch.py",
        "fanout.py",
        "cpu.py",
        "memory.py",
        "scale.py",
        "organization.py",
    ):
        session.run("python", f"benchmarks/{script}")
