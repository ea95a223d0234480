"""The quick tier (`make check`, -m "not slow") never trains, exports or evaluates at full size."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, SLOW_FIXTURES, SLOW_MARKERS


def test_every_user_of_a_slow_fixture_is_marked_with_its_reason(request):
    users = [
        item for item in request.session.items if set(item.fixturenames) & SLOW_FIXTURES.keys()
    ]
    for item in users:
        for fixture in set(item.fixturenames) & SLOW_FIXTURES.keys():
            assert item.get_closest_marker(SLOW_FIXTURES[fixture]), (item.nodeid, fixture)
        assert item.get_closest_marker("slow"), item.nodeid


def test_every_named_reason_implies_slow(request):
    for item in request.session.items:
        if any(item.get_closest_marker(marker) for marker in SLOW_MARKERS):
            assert item.get_closest_marker("slow"), item.nodeid


def test_the_markers_are_registered(pytestconfig):
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert {*SLOW_MARKERS, "slow"} <= registered


def collected(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_the_quick_tier_selects_none_of_the_slow_tests():
    files = ["tests/test_export.py", "tests/test_train.py", "tests/test_shipped_models.py"]
    everything, quick = collected(*files), collected("-m", "not slow", *files)
    slow = {
        "tests/test_export.py::test_export_writes_gated_models_and_report",  # tiny_export
        "tests/test_export.py::test_bad_opset_is_refused_before_any_work",  # tiny_model
        "tests/test_export.py::test_direct_graph_passes_the_same_gate",
        "tests/test_train.py::test_train_writes_the_whole_artifact_set",
        "tests/test_train.py::test_an_interrupted_run_resumes_from_its_last_checkpoint",
        "tests/test_shipped_models.py::test_the_5d_fp32_file_keeps_at_least_the_int8_bar",
    }
    assert slow <= set(everything)
    assert not slow & set(quick)
    assert "tests/test_export.py::test_metadata_round_trip" in quick
