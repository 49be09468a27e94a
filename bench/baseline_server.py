"""The baseline of the benchmarks: a bare Flask-SocketIO server.

Same stack as ``palabre serve`` (Flask-SocketIO on gevent, WebSockets from
simple-websocket, no access log) but nothing else: no database, no cookie
check on the socket, no replay.

* ``note`` (or ``contribute``, as Palabre names it) with ``{cid, kind,
  body}``: broadcasts ``event`` ``{"seq", "type": "contribution.added",
  "data": {...}}`` (the fields of Palabre's ``contribution.added``), then
  acknowledges ``{"ok": true, "id"}``. Sent to everyone, or with ``--tables
  N`` to the sender's table: each socket joins one of N rooms in turn as it
  connects, as a café seats people.
* ``vote`` with ``{cid, contribution, value}``: counts it, broadcasts
  ``votes.changed`` ``{id, total, count}`` to everyone and acknowledges
  ``{"ok": true, "left": 0}``.
* ``GET /j/<code>``: a join form (language, a ``csrf_token`` field); its
  ``POST`` sets a random token in the signed cookie and redirects back, and
  the page then shows ``seq: <n>`` as Palabre's participant page does. So
  ``palabre.testing``'s phones join it as they join Palabre.
* ``--message-queue redis://...``: several such servers share their
  broadcasts through Redis, as Palabre's workers do (Flask-SocketIO's
  message queue); the sequence numbers and note ids are then each server's
  own, so the benchmarks match notes on their body.

Run: ``python bench/baseline_server.py --port 5099`` (127.0.0.1 only).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import collections  # noqa: E402
import itertools  # noqa: E402
import secrets  # noqa: E402

from flask import Flask, redirect, request, session  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

app = Flask(__name__)
app.config["SECRET_KEY"] = "baseline"
socketio = SocketIO(async_mode="gevent", cors_allowed_origins=None, logger=False)
_seq = itertools.count(1)
_ids = itertools.count(1)
_sockets = itertools.count(0)
_votes = collections.Counter()
_table_of: dict[str, str] = {}
#: Rooms notes go to (``--tables``); 0: every note to everyone.
TABLES = 0

JOIN_FORM = """<!doctype html><title>Join</title>
<form method="post"><input type="hidden" name="csrf_token" value="{token}">
<label><input type="radio" name="language" value="en" checked> English</label>
<button>Join</button></form>"""
PARTICIPANT_PAGE = """<!doctype html><title>Session {code}</title>
<p>Welcome.</p><script>var live = {{code: "{code}", seq: {seq}}};</script>"""


@app.route("/j/<code>", methods=["GET", "POST"])
def join(code):
    """The join form, a post that sets the cookie, then a page with the sequence number."""
    if request.method == "POST" and request.form.get("language"):
        session["p"] = secrets.token_urlsafe(32)
        return redirect(f"/j/{code}")
    if "p" not in session:
        return JOIN_FORM.format(token=secrets.token_urlsafe(16))
    return PARTICIPANT_PAGE.format(code=code, seq=0)


@socketio.on("connect")
def on_connect(auth):
    if TABLES:
        _table_of[request.sid] = f"table:{next(_sockets) % TABLES}"
        join_room(_table_of[request.sid])
    return None


@socketio.on("note")
@socketio.on("contribute")
def on_note(data):
    data = data if isinstance(data, dict) else {}
    note_id = next(_ids)
    payload = {
        "id": note_id,
        "kind": str(data.get("kind", "note")),
        "body": str(data.get("body", "")),
        "group": "1",
        "phase_index": 1,
        "transcribed": False,
        "hidden": False,
    }
    envelope = {"seq": next(_seq), "type": "contribution.added", "data": payload}
    if TABLES:
        socketio.emit("event", envelope, to=_table_of[request.sid])
    else:
        socketio.emit("event", envelope)
    return {"ok": True, "id": note_id}


@socketio.on("vote")
def on_vote(data):
    data = data if isinstance(data, dict) else {}
    try:
        contribution = int(data.get("contribution"))
    except (TypeError, ValueError):
        return {"ok": False, "error": "no such contribution"}
    _votes[contribution] += 1
    summary = {"id": contribution, "total": _votes[contribution], "count": _votes[contribution]}
    socketio.emit("event", {"seq": next(_seq), "type": "votes.changed", "data": summary})
    return {"ok": True, "left": 0}


@app.get("/health")
def health():
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument(
        "--tables", type=int, default=0, help="send notes to one of N rooms (default: everyone)"
    )
    parser.add_argument(
        "--message-queue",
        default=None,
        metavar="URL",
        help="share broadcasts with other servers through this Redis (redis://...)",
    )
    args = parser.parse_args()
    global TABLES
    TABLES = args.tables
    # Initialised here, where the message queue is known, as Palabre's app factory does.
    socketio.init_app(app, message_queue=args.message_queue, engineio_logger=False)
    print(f"baseline listening on {args.host}:{args.port}", flush=True)
    socketio.run(app, host=args.host, port=args.port, log_output=False)


if __name__ == "__main__":
    main()
