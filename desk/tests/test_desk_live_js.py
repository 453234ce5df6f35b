"""static/js/desk_live.js, run by Node against a fake browser: refetch on connect, on a seq gap and
on a refetch signal; reconnect with capped, jittered backoff; a refused handshake goes to sign-in."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run the browser module")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    module = tmp_path_factory.mktemp("js") / "desk_live.mjs"  # .mjs: Node reads it as a module, as browsers do
    module.write_text((ROOT / "static/js/desk_live.js").read_text())
    harness = ROOT / "desk/tests/js/desk_live_harness.mjs"
    done = subprocess.run([NODE, str(harness), str(module)], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_it_connects_over_wss_and_refetches_everything_on_hello(run):
    assert run["url"] == "wss://desk.example/ws/desk/"
    assert (run["initial"], run["initial_text"]) == ("connecting", "Connecting…")  # as the page is rendered
    assert run["hello"] == {"events": [["desk:refetch", {"queue": None}]], "state": "live", "text": "Live"}


def test_a_signal_with_alerts_is_passed_on_and_a_gap_or_refetch_signal_refetches(run):
    alerts = [{"id": 9, "status": "open", "severity": 3, "assignee": None}]
    assert run["changed"] == [["desk:queue-changed", {"queue": 5, "alerts": alerts, "seq": 2}]]
    assert run["gap"] == [
        ["desk:refetch", {"queue": None}],  # seq 3 never came
        ["desk:queue-changed", {"queue": 5, "alerts": alerts, "seq": 4}],
    ]
    assert run["refetch"] == [["desk:refetch", {"queue": 5}]]


def test_it_reconnects_by_itself_with_jittered_backoff_capped_at_fifteen_seconds(run):
    assert run["dropped_state"] == "reconnecting"
    delays = run["delays"]
    assert all(0 <= d <= min(15000, 500 * 2**n) for n, d in enumerate(delays))
    assert len(set(delays)) > 1  # jittered
    assert run["sockets_after_drops"] == 12
    assert run["reconnected"] == {"events": [["desk:refetch", {"queue": None}]], "state": "live"}
    assert run["delay_after_hello"] <= 500  # a good connection resets the backoff


def test_a_replaced_session_reconnects_and_a_refused_handshake_goes_to_sign_in(run):
    assert run["replaced"] == {"assigned": 0, "timers": 1}
    assert run["refused"] == {"assigned": ["/accounts/login/?next=%2Fdesk%2F"], "state": "offline", "timers": 0}


def test_the_open_alert_is_told_for_presence_on_each_connection_and_others_presence_is_an_event(run):
    assert run["presence"]["sent"] == [{"type": "viewing", "alert": 42}]
    assert run["presence"]["events"] == [
        ["desk:refetch", {"queue": None}],
        ["desk:presence", {"queue": 5, "alert": 42, "users": ["amy"]}],
    ]


def test_case_signals_become_events_and_a_refetch_signal_a_refetch(run):
    cases = [{"id": 3, "status": "waiting_on_customer", "assignee": "amy"}]
    assert run["case_changed"] == [
        ["desk:case-changed", {"queue": 5, "cases": cases, "seq": 6}],
        ["desk:refetch", {"queue": None}],
    ]


def test_a_concern_is_shown_to_supervisors_from_ids_alone(run):
    assert run["concern"]["events"] == [["desk:concern", {"id": 4, "case": 3, "kind": "phishing"}]]
    assert run["concern"]["hidden"] is False
    assert run["concern"]["text"] == "Security concern #4: suspected phishing on [case #3](/cases/3/)."
