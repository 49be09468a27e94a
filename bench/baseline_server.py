"""The baseline for ``live_latency.py``: a bare Flask-SocketIO broadcaster.

Same stack as ``palabre serve`` (Flask-SocketIO on gevent, WebSockets from
simple-websocket, no access log) but nothing else: no database, no cookie
session check, no rooms. A client emits ``note`` with ``{cid, kind, body}``;
the server broadcasts ``event`` ``{"seq", "type": "contribution.added",
"data": {...}}`` to every connected client, with the same fields as
Palabre's ``contribution.added``, then acknowledges ``{"ok": true, "id"}``.

Run: ``python bench/baseline_server.py --port 5099`` (127.0.0.1 only).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402

app = Flask(__name__)
app.config["SECRET_KEY"] = "baseline"
socketio = SocketIO(
    app,
    async_mode="gevent",
    cors_allowed_origins=None,
    logger=False,
    engineio_logger=False,
)
_seq = itertools.count(1)
_ids = itertools.count(1)


@socketio.on("connect")
def on_connect(auth):
    return None


@socketio.on("note")
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
    socketio.emit("event", envelope)
    return {"ok": True, "id": note_id}


@app.get("/health")
def health():
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5099)
    args = parser.parse_args()
    print(f"baseline listening on {args.host}:{args.port}", flush=True)
    socketio.run(app, host=args.host, port=args.port, log_output=False)


if __name__ == "__main__":
    main()
