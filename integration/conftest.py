"""pytest wiring for the namespace lab.

* Every test under integration/ gets the ``integration`` marker, and is skipped with a reason
  when the lab cannot run here (not root, or ``bird``/``ip`` missing).
* ``lab``: a factory fixture.  ``lab("bird")`` or ``lab([NodeSpec, ...], pool=...)`` builds and
  starts a Lab; every lab it made is torn down after the test, pass or fail.
* When a test fails, the report gets a "lab diagnostics" section (sessions, routes, log tails),
  captured before teardown.
* Once per session, runs left behind by crashed earlier sessions are swept (persistent
  ``make lab`` runs are kept).
* ``--lab-backend netns|docker`` (or ``$SPEAKER_LAB_BACKEND``; default netns): with ``docker``
  every BIRD node runs in Docker containers (integration/lab/docker.py, docs/docker-lab.md) and
  the same tests run unchanged.  The engine is found or started once per session
  (``docker_engine``), and stopped at the end if the session started it; the session fails if
  a container, image or namespace of its runs is left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from integration.lab import (
    BACKEND_ENV,
    BACKENDS,
    Lab,
    NodeSpec,
    cleanup_stale,
    default_backend,
    lab_class,
    unavailable_reason,
)

INTEGRATION_DIR = Path(__file__).resolve().parent
LabFactory = Callable[..., Lab]
_LABS = pytest.StashKey[list[Lab]]()
_PREFIXES = pytest.StashKey[list[str]]()
"""Run prefixes of every lab made in this session (checked for leftovers at the end)."""
_DOCKER_NOTES = pytest.StashKey[list[str]]()
"""What the Docker backend used (engine, image source), for the terminal summary."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--lab-backend``: where BIRD nodes run."""
    parser.getgroup("speaker lab").addoption(
        "--lab-backend",
        choices=BACKENDS,
        default=None,
        help=f"run BIRD nodes in plain namespaces or Docker containers (default: ${BACKEND_ENV} "
        "or netns)",
    )


def lab_backend(config: pytest.Config) -> str:
    """The session's backend: ``--lab-backend``, else ``$SPEAKER_LAB_BACKEND``, else netns."""
    backend = config.getoption("--lab-backend", default=None) or default_backend()
    if backend not in BACKENDS:
        raise pytest.UsageError(f"${BACKEND_ENV}={backend!r}: want one of {', '.join(BACKENDS)}")
    return str(backend)


def pytest_configure(config: pytest.Config) -> None:
    """Validate the backend early; set up the per-session bookkeeping."""
    lab_backend(config)
    config.stash[_PREFIXES] = []
    config.stash[_DOCKER_NOTES] = []


def pytest_report_header(config: pytest.Config) -> str:
    """Say which backend the lab tests use."""
    return f"speaker lab backend: {lab_backend(config)}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say which Docker engine and image the Docker backend used."""
    notes = config.stash.get(_DOCKER_NOTES, [])
    if notes:
        terminalreporter.section("speaker lab: Docker backend")
        for line in dict.fromkeys(notes):
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark integration/ tests; skip them (with the reason) where the lab cannot run."""
    reason = unavailable_reason()
    for item in items:
        if INTEGRATION_DIR not in Path(item.path).resolve().parents:
            continue
        item.add_marker(pytest.mark.integration)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach lab diagnostics to a failed test's report while its labs are still up."""
    report = yield
    if report.when == "call" and report.failed:
        for lab in item.stash.get(_LABS, []):
            if lab.is_up:
                try:
                    text = lab.diagnostics()
                except Exception as exc:  # diagnostics must never mask the real failure
                    text = f"(diagnostics failed: {exc!r})"
                report.sections.append((f"lab diagnostics {lab.prefix}", text))
    return report


@pytest.fixture(scope="session", autouse=True)
def _sweep_stale_labs() -> Iterator[None]:
    """Remove namespaces and run directories of crashed earlier runs (owner PID dead)."""
    if unavailable_reason() is None:
        cleanup_stale()
    yield


@pytest.fixture(scope="session")
def docker_engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The Docker engine for the session (``integration.lab.docker.Engine``), found or started.

    At the end: fail if a container, image or namespace of this session's runs is left, then
    stop dockerd if this session started it.  Skips the test on the netns backend.
    """
    if lab_backend(request.config) != "docker":
        pytest.skip("needs the Docker backend: run with --lab-backend docker")
    from integration.lab import docker as lab_docker

    notes = request.config.stash[_DOCKER_NOTES]
    engine = lab_docker.ensure_engine(log=notes.append)
    notes.append(f"engine: {engine.describe()}")
    yield engine
    prefixes = request.config.stash[_PREFIXES]
    try:
        leftovers = lab_docker.leftovers(engine.client, prefixes)
    finally:
        notes.append(f"engine at the end: {lab_docker.release_engine(engine)}")
    assert not leftovers, "left behind by this session's labs: " + ", ".join(leftovers)


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """Factory: ``lab(nodes_or_mix="bird", **Lab kwargs) -> Lab`` (built and started).

    The class follows ``--lab-backend`` (docker: ``DockerLab`` on the session's engine).
    All labs made in a test are torn down afterwards, in reverse order, even on failure.
    """
    labs: list[Lab] = []
    request.node.stash[_LABS] = labs
    backend = lab_backend(request.config)
    cls = lab_class(backend)
    engine = request.getfixturevalue("docker_engine") if backend == "docker" else None

    def factory(nodes: Sequence[NodeSpec] | str = "bird", **kwargs: Any) -> Lab:
        if engine is not None:
            kwargs.setdefault("engine", engine)
        new = cls(nodes, **kwargs)
        labs.append(new)
        request.config.stash[_PREFIXES].append(new.prefix)
        new.up()
        source = getattr(new, "image_source", None)  # None: no BIRD node, no image
        if source is not None:
            request.config.stash[_DOCKER_NOTES].append(
                f"image: built by {source}: {getattr(new, 'image_note', '')}"
            )
        return new

    yield factory
    errors: list[BaseException] = []
    for made in reversed(labs):
        try:
            made.down()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
