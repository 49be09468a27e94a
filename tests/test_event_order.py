"""``live.js`` applies sequenced events in order, each once, whatever order they arrive in.

With several workers two events can cross on their way through the message
queue; a page also never receives other rooms' events. ``tests/js/ordering.js``
runs ``core/static/live.js`` in Node with a fake socket and clock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path


def run_ordering(**scenarios) -> dict:
    node = shutil.which("node")
    assert node, "Node.js is missing: scripts/setup installs it with npm"
    script = Path(__file__).parent / "js" / "ordering.js"
    done = subprocess.run(
        [node, str(script), json.dumps(scenarios)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def note(seq: int) -> dict:
    return {"seq": seq, "type": "contribution.added", "data": {"id": seq}}


def test_crossed_events_wait_for_each_other_and_need_no_replay():
    result = run_ordering(crossed={"arrive": [note(2), note(3), note(1)]})["crossed"]
    assert result == {"applied": [1, 2, 3], "replays": [], "lastSeq": 3}


def test_a_lasting_gap_is_filled_by_replay_without_dropping_the_late_event():
    """Seq 2 went to another table; seq 3 arrived before 1: asked for, nothing is lost."""
    replay = {"ok": True, "seq": 3, "events": [note(1), note(3)]}
    result = run_ordering(gap={"arrive": [note(3)], "replay": replay})["gap"]
    assert result == {"applied": [1, 3], "replays": [0], "lastSeq": 3}


def test_an_event_had_twice_is_applied_once():
    replay = {"ok": True, "seq": 4, "events": [note(2), note(4)]}
    result = run_ordering(
        twice={"seq": 1, "arrive": [note(2), note(1), note(2), note(4)], "replay": replay}
    )["twice"]
    assert result == {"applied": [2, 4], "replays": [2], "lastSeq": 4}


def test_head_counts_without_seq_apply_at_once_and_too_much_to_replay_reloads():
    count = {"type": "participants.changed", "data": {"count": 4}}
    results = run_ordering(
        count={
            "arrive": [note(2), count],
            "replay": {"ok": True, "seq": 2, "events": [note(2)]},
        },
        too_much={"arrive": [note(900)], "replay": {"ok": False, "resync": True}},
    )
    assert results["count"]["applied"] == ["participants.changed", 2]
    assert results["count"]["lastSeq"] == 2
    assert results["too_much"]["applied"] == ["reload"]
