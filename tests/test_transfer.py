"""Session export and import: a round trip per built-in method, and files that are refused.

Each method's session is built through its own code paths (the core's
``accept`` and ``vote``, the facilitator's actions), harvested into the
backlog, exported, and imported into a fresh app: the imported session must
hold the same content, its backlog items the same provenance, and its
report and "you said, we did" the same needs.
"""

from __future__ import annotations

import io
import json
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from palabre import contributions, phases
from palabre.actions import run as run_action
from palabre.backlog import harvest, session_actions, session_needs, suggest_theme
from palabre.database import write_transaction
from palabre.extensions import db
from palabre.models import (
    Action,
    ActionUpdate,
    Contribution,
    Need,
    Participant,
    RoleLink,
    Session,
    Stakeholder,
    Vote,
    hash_token,
)
from palabre.plugin_host import get_method
from palabre.printing import document_html
from palabre.role_links import issue_role_link
from palabre.testing.kit import close_app, make_app, new_cid, new_session, sign_in
from palabre.transfer import (
    ExportRefused,
    ImportRefused,
    export_command,
    export_session,
    import_command,
    import_session,
)

from .morsil import build_morsil
from .test_forum_theatre import ROUNDABOUT
from .test_mystery_shopping import audit_config

# --- building a session of each method ---------------------------------------------------


def _person(session, name, language="en", group=None, link=None) -> Participant:
    with write_transaction():
        participant = Participant(
            session_id=session.id,
            token_hash=hash_token(f"{session.id}-{name}"),
            language=language,
            group=group,
            role=link.role if link else None,
            role_link_id=link.id if link else None,
        )
        db.session.add(participant)
    return participant


def _say(session, participant, kind, body, **fields):
    return contributions.accept(
        session, participant, client_id=new_cid(), kind_name=kind, body=body, fields=fields
    )


def _vote(session, participant, contribution, value=1):
    contributions.vote(
        session, participant, client_id=new_cid(), contribution_id=contribution.id, value=value
    )


def build_cafe(app):
    ref = new_session(app, "world_cafe", title="Café on the intercultural plan")
    with app.test_request_context():
        session = db.session.get(Session, ref.id)
        amal, jonas = _person(session, "amal", "ar", "1"), _person(session, "jonas", "fr", "2")
        _say(session, amal, "note", "سكن بأسعار معقولة قرب المدرسة")
        _say(session, jonas, "note", "Des cours de langue le soir")
        hidden = _say(session, jonas, "note", "Something rude about a neighbour")
        contributions.set_hidden(session, hidden.id, True)
        phases.go_to(session, 4)
        insights = [
            contributions.transcribe(
                session,
                client_id=new_cid(),
                kind_name="insight",
                body=text,
                group="1",
                phase_index=4,
            )
            for text in ("Housing near schools", "Evening language classes")
        ]
        _vote(session, amal, insights[0])
        _vote(session, jonas, insights[0])
        _vote(session, jonas, insights[1])
        phases.go_to(session, 5)
    return ref


def build_forum(app):
    ref = new_session(app, "forum_theatre", ROUNDABOUT, phase=4, title="Forum at the Tron")
    with app.test_request_context():
        session = db.session.get(Session, ref.id)
        amina, jonas = _person(session, "amina"), _person(session, "jonas")
        answers = [
            _say(session, amina, "answer", "No interpreter"),
            _say(session, jonas, "answer", "Nobody explained the letter"),
        ]
        phases.go_to(session, 5)
        run_action(session, "intervention.log", {"tried": "Asks for an interpreter", "scene": "1"})
        intervention = db.session.scalar(
            select(Contribution).where(
                Contribution.session_id == session.id, Contribution.kind == "intervention"
            )
        )
        _vote(session, amina, intervention, 5)
        _vote(session, jonas, intervention, 4)
        phases.go_to(session, 6)
        run_action(
            session,
            "obstacle.add",
            {"title": "Nobody speaks my language", "answers": [str(a.id) for a in answers]},
        )
        phases.go_to(session, 7)
    return ref


def build_audit(app):
    ref = new_session(app, "mystery_shopping", audit_config(), phase=1, title="Advice audit")
    with app.test_request_context():
        session = db.session.get(Session, ref.id)
        with write_transaction():
            link = issue_role_link(session, "evaluator")
        run_action(
            session, "assignment.add", {"link": str(link.id), "service": "s1", "scenario": "p1"}
        )
        visit = db.session.get(Session, ref.id).config["assignments"][-1]["id"]
        evaluator = _person(session, "evaluator", link=link)
        _say(
            session,
            evaluator,
            "visit",
            "Told to come back next week.",
            assignment=visit,
            date=date.today().isoformat(),
            followed="yes",
            minutes="90",
            expenses="4.80",
            **{"score-c1": "2", "score-c2": "3"},
        )
        phases.go_to(session, 2)
        with write_transaction():
            earlier = Action(title="Interpreters at the advice desk")
            db.session.add(earlier)
        run_action(
            session,
            "finding.add",
            {"body": "Nobody offered an interpreter", "service": "s1", "actions": str(earlier.id)},
        )
        finding = db.session.scalar(select(Contribution).where(Contribution.kind == "finding"))
        run_action(session, "finding.agree", {"id": str(finding.id)})
        phases.go_to(session, 4)
    return ref


BUILDERS = {
    "world_cafe": build_cafe,
    "forum_theatre": build_forum,
    "mystery_shopping": build_audit,
    "citizen_dialogue": build_morsil,
}


def harvest_everything(app, ref) -> None:
    """Take every candidate into the backlog, then plan and monitor an action for a need."""
    with app.test_request_context():
        session = db.session.get(Session, ref.id)
        candidates = get_method(session.method).backlog_candidates(session)
        chosen = [
            (c, c.title, c.theme or suggest_theme(c.title) or "other", list(c.addresses))
            for c in candidates
        ]
        harvest(session, chosen)
        need = session_needs(session)[0]
        with write_transaction():
            owner = Stakeholder(name="Housing department", kind="city")
            action = Action(title="A plan for the need", status="planned", owner=owner)
            action.needs = [need]
            action.updates = [ActionUpdate(body="Started in March", progress=2)]
            db.session.add(action)


# --- what must be the same after a round trip -------------------------------------------


def content(app, session_id: int) -> dict:
    """A session's content with its ids replaced by positions, so two instances compare."""
    with app.app_context():
        session = db.session.get(Session, session_id)
        rows = lambda model: db.session.scalars(  # noqa: E731
            select(model).where(model.session_id == session_id).order_by(model.id)
        ).all()
        notes = rows(Contribution)
        people = rows(Participant)
        links = rows(RoleLink)
        at = {c.id: n for n, c in enumerate(notes)}
        who = {p.id: n for n, p in enumerate(people)}
        link_at = {link.id: n for n, link in enumerate(links)}
        needs, actions = session_needs(session), session_actions(session)
        return {
            "session": (session.title, session.method, session.status, session.phase_index),
            "links": [(link.role, link.group, link.code, link.active) for link in links],
            "people": [
                (p.language, p.group, p.role, link_at.get(p.role_link_id), p.state) for p in people
            ],
            "contributions": [
                (
                    c.kind,
                    c.body if not c.hidden else "",
                    c.group,
                    c.phase_index,
                    c.hidden,
                    c.transcribed,
                    c.language,
                    who.get(c.participant_id),
                    at.get(c.reply_to_id),
                )
                for c in notes
            ],
            "votes": sorted(
                (who[v.participant_id], at[v.contribution_id], v.value) for v in rows(Vote)
            ),
            "needs": [
                (
                    need.title,
                    need.theme,
                    (need.support.people, need.support.dots, need.support.rating),
                    [at.get(s.contribution_id) for s in need.sources],
                    sorted(a.title for a in need.actions),
                )
                for need in needs
            ],
            "actions": [
                (a.title, a.status, [at.get(s.contribution_id) for s in a.sources]) for a in actions
            ],
        }


def meeting_ids(app, session_id: int) -> list[int]:
    """The ids of a session's own sessions (a dialogue's meetings), oldest first."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(Session.id).where(Session.parent_id == session_id).order_by(Session.id)
            )
        )


def report_html(app, session_id: int) -> str:
    """The session's report as printed, without the moment it was printed."""
    with app.test_request_context():
        session = db.session.get(Session, session_id)
        method = get_method(session.method)
        html = document_html(
            method.template("report"),
            "report",
            session,
            method=method,
            **method.report_context(session),
        )
    return re.sub(r"<tr><th scope=\"row\">Printed</th><td>[^<]*</td></tr>", "", html)


@pytest.fixture
def target(tmp_path):
    """A second, fresh instance to import into."""
    app = make_app(tmp_path / "target")
    yield app
    close_app(app)


@pytest.mark.parametrize("slug", sorted(BUILDERS))
def test_a_session_moves_to_another_instance_with_its_backlog(app, target, slug):
    ref = BUILDERS[slug](app)
    harvest_everything(app, ref)
    with app.test_request_context():
        raw = json.dumps(export_session(db.session.get(Session, ref.id))).encode()
    with target.test_request_context():
        imported = import_session(raw)
        new_id = imported.session.id

    before, after = content(app, ref.id), content(target, new_id)
    assert after == before
    assert before["needs"], "the session fed the backlog"
    there, here = report_html(target, new_id), report_html(app, ref.id)
    assert there == here
    if slug == "citizen_dialogue":
        # Its meetings are sessions of their own, carried by its file with what was said there.
        assert "No dialogue meetings yet." not in there
        assert [content(app, m) for m in meeting_ids(app, ref.id)] == [
            content(target, m) for m in meeting_ids(target, new_id)
        ]
    # What participants see on the closed session's page: the same needs and actions.
    with app.app_context():
        code = db.session.get(Session, ref.id).code
    said = app.test_client().get(f"/j/{code}").text
    with target.app_context():
        new_code = db.session.get(Session, new_id).code
    assert new_code == code, "a join code free on the new instance is kept"
    said_there = target.test_client().get(f"/j/{new_code}").text
    for title in [need[0] for need in before["needs"]]:
        assert title in said_there
    assert said.count("<li") == said_there.count("<li")


def test_plugins_ids_are_translated_to_the_new_ones(app, target):
    """Ids kept in JSON (a theme's answers, evaluator links, findings' actions) point at the
    new rows."""
    dialogue, audit = build_morsil(app), build_audit(app)
    with target.test_request_context():
        for ref in (dialogue, audit):
            with app.test_request_context():
                raw = json.dumps(export_session(db.session.get(Session, ref.id))).encode()
            import_session(raw)
    with target.app_context():
        moved = db.session.scalar(select(Session).where(Session.method == "citizen_dialogue"))
        by_id = {
            c.id: c
            for c in db.session.scalars(
                select(Contribution).where(Contribution.session_id == moved.id)
            )
        }
        for theme in (c for c in by_id.values() if c.kind == "theme"):
            for ref in theme.data.get("answers", []):
                assert by_id[int(ref.split(":")[0])].kind == "interview"
        # A project's idea was said in a meeting, and a meeting's themes are the dialogue's.
        meetings = db.session.scalars(select(Session).where(Session.parent_id == moved.id)).all()
        assert meetings
        said = {
            c.id: c
            for c in db.session.scalars(
                select(Contribution).where(Contribution.session_id.in_([m.id for m in meetings]))
            )
        }
        projects = [c for c in by_id.values() if c.kind == "project"]
        assert any(p.data.get("idea") is not None for p in projects)
        for project in projects:
            idea = project.data.get("idea")
            assert idea is None or said[idea].kind == "idea"
        for meeting in meetings:
            assert meeting.config["themes"]
            assert all(by_id[t].kind == "theme" for t in meeting.config["themes"])
        for view in said.values():
            assert by_id[view.data["theme"]].kind == "theme"
        audit_there = db.session.scalar(select(Session).where(Session.method == "mystery_shopping"))
        link = db.session.scalar(select(RoleLink).where(RoleLink.session_id == audit_there.id))
        assert [a["link"] for a in audit_there.config["assignments"]] == [link.id]
        finding = db.session.scalar(
            select(Contribution).where(
                Contribution.session_id == audit_there.id, Contribution.kind == "finding"
            )
        )
        # The action it is evidence for moved with it (evaluated with the audit as evidence).
        moved_action = db.session.scalar(
            select(Action).where(Action.title == "Interpreters at the advice desk")
        )
        assert finding.data["actions"] == [moved_action.id]


def test_the_file_holds_no_secret_and_no_hidden_text(app):
    ref = build_cafe(app)
    with app.test_request_context():
        session = db.session.get(Session, ref.id)
        document = export_session(session)
        keys = set(db.session.scalars(select(RoleLink.key)))
        tokens = set(db.session.scalars(select(Participant.token_hash)))
    text = json.dumps(document, ensure_ascii=False)
    assert keys and not any(key in text for key in keys)
    assert not any(token in text for token in tokens)
    assert "Something rude" not in text
    assert "سكن بأسعار معقولة" in text


def test_the_same_file_twice_is_refused_unless_as_a_copy(app, target):
    ref = build_cafe(app)
    with app.test_request_context():
        raw = json.dumps(export_session(db.session.get(Session, ref.id))).encode()
    with target.test_request_context():
        first = import_session(raw)
        with pytest.raises(ImportRefused, match="already imported"):
            import_session(raw)
        copy = import_session(raw, as_copy=True)
        assert copy.session.id != first.session.id
        assert copy.session.code != first.session.code
        assert db.session.scalar(select(func.count()).select_from(Session)) == 2


def _exported(app) -> dict:
    ref = build_forum(app)
    harvest_everything(app, ref)
    with app.test_request_context():
        return export_session(db.session.get(Session, ref.id))


def _broken(document: dict, change) -> bytes:
    copy = json.loads(json.dumps(document))
    change(copy)
    return json.dumps(copy).encode()


def _set(path, value):
    def change(document):
        where = document
        for step in path[:-1]:
            where = where[step]
        where[path[-1]] = value

    return change


def _rows(*models) -> list[int]:
    return [db.session.scalar(select(func.count()).select_from(m)) for m in models]


BAD_FILES = {
    "not JSON": (lambda d: None, "not JSON"),
    "not a session file": (lambda d: d.pop("format"), "not a Palabre session file"),
    "a newer format": (_set(["version"], 3), "version 3 of the format"),
    "a missing key": (lambda d: d["contributions"][0].pop("kind"), "has no “kind”"),
    "a wrong type": (_set(["session", "phase_index"], "3"), "“phase_index” of session"),
    "a reference outside the file": (
        lambda d: d["votes"][0].__setitem__("contribution", 99999),
        "refers to contributions 99999",
    ),
    "a source in no session of the file": (
        lambda d: d["needs"][0]["sources"][0].__setitem__("session", 1),
        "refers to sessions 1",
    ),
    "a vote for another session's contribution": (
        lambda d: d["children"].append(
            {
                "session": d["session"],
                "role_links": [],
                "participants": [],
                "contributions": [],
                "votes": [d["votes"][0]],
                "plugins": {},
            }
        ),
        "refers to participants",
    ),
    "a method not installed": (_set(["session", "method"], "idea_box"), "not installed here"),
    "a plugin's part nobody takes": (
        _set(["plugins", "idea_box"], {"ideas": []}),
        "plugin not installed here (idea_box)",
    ),
    "a phase beyond the plan": (_set(["session", "phase_index"], 40), "does not fit the method"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_refused_whole_and_says_why(app, target, case):
    document = _exported(app)
    change, message = BAD_FILES[case]
    raw = b"\x00{not json" if case == "not JSON" else _broken(document, change)
    with target.test_request_context():
        counts = {
            m: db.session.scalar(select(func.count()).select_from(m)) for m in (Session, Need)
        }
        with pytest.raises(ImportRefused) as refused:
            import_session(raw)
        assert message in refused.value.message
        assert counts == {
            m: db.session.scalar(select(func.count()).select_from(m)) for m in (Session, Need)
        }


def test_a_huge_file_is_refused_before_it_is_read(app):
    app.config["IMPORT_MAX_BYTES"] = 1000
    with app.test_request_context(), pytest.raises(ImportRefused, match="too big: 0 MB"):
        import_session(b" " * 1001)


def test_a_refusal_is_translated(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        from flask_babel import refresh

        refresh()
        with pytest.raises(ImportRefused) as refused:
            import_session(b"[1, 2]")
    assert refused.value.message != "This is not a Palabre session file."


def test_the_web_export_and_import(app, target):
    ref = build_forum(app)
    owner = sign_in(app.test_client())
    run_page = owner.get(f"/sessions/{ref.id}")
    assert f"/sessions/{ref.id}/export.json" in run_page.text
    download = owner.get(f"/sessions/{ref.id}/export.json")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    staff = sign_in(target.test_client())
    assert "/sessions/import" in staff.get("/sessions/").text
    form = staff.get("/sessions/import")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text).group(1)
    sent = staff.post(
        "/sessions/import",
        data={"csrf_token": token, "file": (io.BytesIO(download.data), "s.json")},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 302
    page = staff.get(sent.headers["Location"])
    assert "Session imported" in page.text
    with target.app_context():  # the audit log's entry names the session imported
        from palabre.models import AuditEntry

        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.action == "sessions.import_session")
        )
        assert sent.headers["Location"].endswith(f"/sessions/{entry.session_id}")
    again = staff.post(
        "/sessions/import",
        data={"csrf_token": token, "file": (io.BytesIO(download.data), "s.json")},
        content_type="multipart/form-data",
    )
    assert again.status_code == 400
    assert "already imported" in again.text.replace("&#34;", '"')


def test_the_commands_export_and_import(app, target, tmp_path):
    ref = build_cafe(app)
    harvest_everything(app, ref)
    file = tmp_path / "cafe.json"
    done = app.test_cli_runner().invoke(export_command, [str(ref.id), str(file)])
    assert done.exit_code == 0, done.output
    assert f"Exported session {ref.id}" in done.output
    runner = target.test_cli_runner()
    done = runner.invoke(import_command, [str(file)])
    assert done.exit_code == 0, done.output
    assert "2 needs" in done.output or "needs" in done.output
    again = runner.invoke(import_command, [str(file)])
    assert again.exit_code == 1
    assert "Nothing was imported. This file was already imported" in again.output
    file.write_text("{}")
    broken = runner.invoke(import_command, [str(file)])
    assert "Nothing was imported. This is not a Palabre session file." in broken.output


def test_an_upload_over_the_limit_is_refused_on_the_form(app):
    app.config["IMPORT_MAX_BYTES"] = 2 * 1024 * 1024
    staff = sign_in(app.test_client())
    form = staff.get("/sessions/import")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text).group(1)
    # The body built by hand: the test client would spool a large form to a temporary file
    # that nobody closes when the server stops reading early.
    head = (
        f'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        '--b\r\nContent-Disposition: form-data; name="file"; filename="big.json"\r\n'
        "Content-Type: application/json\r\n\r\n"
    )
    body = head.encode() + b" " * (3 * 1024 * 1024) + b"\r\n--b--\r\n"
    sent = staff.post("/sessions/import", data=body, content_type="multipart/form-data; boundary=b")
    assert sent.status_code == 413
    assert "This file is too big: 2 MB at most." in sent.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Session)) == 0


def _as_version_1(document: dict) -> dict:
    """A file as version 1 of the format wrote it: one session, no ``children``."""
    old = json.loads(json.dumps(document))
    old["version"] = 1
    assert old.pop("children") == []
    for item in old["needs"] + old["actions"]:
        for source in item["sources"]:
            assert source.pop("session") == 0
        for entry in item.get("updates", []):
            entry["evidence_is_this_session"] = entry.pop("evidence_session") == 0
    return old


def test_a_file_of_the_first_version_still_imports(app, target):
    ref = build_audit(app)
    harvest_everything(app, ref)
    with app.test_request_context():
        document = export_session(db.session.get(Session, ref.id))
    evaluated = [u for a in document["actions"] for u in a["updates"] if u["evidence_session"] == 0]
    assert evaluated, "an action evaluated with the audit as evidence"
    with target.test_request_context():
        imported = import_session(json.dumps(_as_version_1(document)).encode())
        new_id = imported.session.id
        assert db.session.scalar(
            select(func.count())
            .select_from(ActionUpdate)
            .where(ActionUpdate.evidence_session_id == new_id)
        ) == len(evaluated)
    assert content(target, new_id) == content(app, ref.id)


def test_a_meeting_travels_only_with_its_dialogue(app):
    ref = build_morsil(app)
    meeting = meeting_ids(app, ref.id)[0]
    with app.test_request_context(), pytest.raises(ExportRefused, match="travels with it"):
        export_session(db.session.get(Session, meeting))
    owner = sign_in(app.test_client())
    assert f"/sessions/{meeting}/export.json" not in owner.get(f"/sessions/{meeting}").text
    refused = owner.get(f"/sessions/{meeting}/export.json", follow_redirects=True)
    assert "travels with it" in refused.text.replace("&#34;", '"')
    done = app.test_cli_runner().invoke(export_command, [str(meeting), "/tmp/never.json"])
    assert done.exit_code != 0 and "travels with it" in done.output
