"""pytest wiring for the namespace lab.

* Every test under integration/ gets the ``integration`` marker, and is skipped with a reason
  when the lab cannot run here (not root, or ``bird``/``ip`` missing).
* ``lab``: a factory fixture.  ``lab("bird")`` or ``lab([NodeSpec, ...], pool=...)`` builds and
  starts a Lab; every lab it made is torn down after the test, pass or fail.
* When a test fails, the report gets a "lab diagnostics" section (sessions, routes, log tails),
  captured before teardown.
* Once per session, runs left behind by crashed earlier sessions are swept (persistent
  ``make lab`` runs are kept).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from integration.lab import Lab, NodeSpec, cleanup_stale, unavailable_reason

INTEGRATION_DIR = Path(__file__).resolve().parent
LabFactory = Callable[..., Lab]
_LABS = pytest.StashKey[list[Lab]]()


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


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[LabFactory]:
    """Factory: ``lab(nodes_or_mix="bird", **Lab kwargs) -> Lab`` (built and started).

    All labs made in a test are torn down afterwards, in reverse order, even on failure.
    """
    labs: list[Lab] = []
    request.node.stash[_LABS] = labs

    def factory(nodes: Sequence[NodeSpec] | str = "bird", **kwargs: Any) -> Lab:
        new = Lab(nodes, **kwargs)
        labs.append(new)
        new.up()
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
