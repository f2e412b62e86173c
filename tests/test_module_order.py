"""tests/conftest.py orders the test modules for `make test`'s two pytest-xdist workers."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import pytest_collection_modifyitems


def items(costs: dict[str, list[float | None]]) -> list:
    """Fake collected tests: per module, one entry per test (None: not slow, else its `slow(seconds=N)`)."""
    out = []
    for module, tests in costs.items():
        for i, seconds in enumerate(tests):
            mark = None if seconds is None else pytest.mark.slow(seconds=seconds).mark
            out.append(SimpleNamespace(path=Path(module), name=f"{module}::{i}",
                                       get_closest_marker=lambda name, m=mark: m if name == "slow" else None))
    return out


def test_each_worker_is_given_a_cheap_second_module_behind_its_first(monkeypatch):
    """xdist's loadscope scheduler gives each of N workers a module, then at once one more to every worker with at
    most two tests pending: the module of the 1067 s DPO test has two, so the module after the N longest ran behind
    it on the same worker (on an AVX2-only EPYC: the 387 s recipe test waited an hour behind it, then ran while the
    other worker had been idle for half an hour). The N cheapest modules go there instead, then the rest longest
    first."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    collected = items({"dpo": [103, 1067], "recipe": [143], "demo": [83], "bad": [53], "one": [None],
                       "two": [None, None], "three": [None] * 3, "many": [None] * 40})
    pytest_collection_modifyitems(None, collected)
    order = list(dict.fromkeys(str(it.path) for it in collected))
    # a one-test module behind dpo would leave two tests pending after dpo's first: the scheduler would queue
    # another module behind the long test
    assert order == ["dpo", "recipe", "two", "three", "demo", "bad", "many", "one"]


def test_without_workers_the_longest_modules_come_first(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    collected = items({"one": [None], "dpo": [103, 1067], "many": [None] * 40, "recipe": [143]})
    pytest_collection_modifyitems(None, collected)
    assert list(dict.fromkeys(str(it.path) for it in collected)) == ["dpo", "recipe", "many", "one"]
    assert [it.name for it in collected[:2]] == ["dpo::0", "dpo::1"]  # order within a module is kept
