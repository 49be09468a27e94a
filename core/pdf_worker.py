"""A lean, long-lived WeasyPrint process: HTML in, PDF out, progress on the way.

Run as a script (``python -I .../pdf_worker.py``), never as ``palabre.…``:
it imports the standard library and WeasyPrint, and nothing of Palabre,
Flask or SQLAlchemy, so it starts in the time WeasyPrint takes to import
and holds only what WeasyPrint needs. It stays up between documents, so
fonts and WeasyPrint's caches are warm for the next one, and exits when its
standard input closes or after :data:`IDLE_EXIT_S` seconds without work.

The protocol, on standard input and output, one JSON object per line:

* on start, ``{"ready": {"import_s": …}}``;
* a request is ``{"html_bytes": n, "base_url": "…"}`` followed by ``n``
  bytes of UTF-8 HTML;
* while rendering, ``{"progress": {"step": "layout", "page": 12}}`` (steps
  ``parse``, ``style``, ``layout``, ``pdf``);
* then ``{"pdf_bytes": n, "pages": p, "render_s": …, "rss_mb": …}``
  followed by ``n`` bytes of PDF, or ``{"error": "…"}``.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import select
import sys
import time
import traceback

#: A worker nobody has used for this long exits, giving its memory back.
IDLE_EXIT_S = 300
#: The worker's CPU priority (``nice``): the server's live layer goes first.
NICENESS = 10
#: WeasyPrint's progress messages ("Step 5 - Creating layout - Page 12") -> our steps.
STEPS = {"1": "parse", "2": "parse", "3": "style", "4": "style", "5": "layout", "6": "pdf"}


def _send(out, message: dict, payload: bytes = b"") -> None:
    out.write(json.dumps(message).encode() + b"\n" + payload)
    out.flush()


class _Progress(logging.Handler):
    """Forwards WeasyPrint's progress log as ``progress`` messages, one per change."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.last = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()  # "Step 5 - Creating layout - Page 12"
        step = STEPS.get(message[5:6])
        if step is None:
            return
        page = record.args[0] if step == "layout" and record.args else None
        if (step, page) != self.last:
            self.last = (step, page)
            _send(self.out, {"progress": {"step": step, "page": page}})


def _rss_bytes() -> int:
    """This process's resident memory now (Python seldom gives memory back: near its peak).

    Not ``ru_maxrss``: on Linux it keeps the peak of the server this process
    was forked from.
    """
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _tag_each_blocks_language() -> bool:
    """Give each tagged element whose HTML element has a ``lang`` that ``/Lang`` (PDF/UA-1 7.2).

    WeasyPrint (up to 70 at least) writes the document's language only, in
    the catalog: a poster's Arabic block or a French note in an English
    report would be read in the document's voice. Its tags are made by
    ``weasyprint.pdf.tags._build_box_tree``, which calls itself through the
    module's name for every box: wrapping that name sees each element as it
    is made, and gives it its box's language. Children inherit ``/Lang``
    in the structure tree, so only the elements that carry a ``lang`` need
    it. Returns False, changing nothing, for a WeasyPrint made otherwise
    (``tests/test_printing.py`` then fails on the poster's tags).
    """
    import pydyf
    from weasyprint.pdf import tags

    build = getattr(tags, "_build_box_tree", None)
    if build is None or getattr(build, "tags_languages", False):
        return build is not None

    def build_with_languages(box, *args, **kwargs):
        element = getattr(box, "element", None)
        language = None
        if element is not None and getattr(box, "element_tag", None) != "html":
            language = element.get("lang")
        for made in build(box, *args, **kwargs):
            if language and "Lang" not in made:
                made["Lang"] = pydyf.String(language)
            yield made

    build_with_languages.tags_languages = True
    tags._build_box_tree = build_with_languages
    return True


def _read_request(source) -> tuple[str, str] | None:
    """The next document and its base URL; None at the end of input or when idle too long."""
    readable, _, _ = select.select([source], [], [], IDLE_EXIT_S)
    if not readable:
        return None
    header = source.readline()
    if not header:
        return None
    request = json.loads(header)
    html = source.read(request["html_bytes"]).decode()
    return html, request["base_url"]


def main() -> None:
    source, out = sys.stdin.buffer, sys.stdout.buffer
    started = time.perf_counter()
    from weasyprint import HTML

    import_s = time.perf_counter() - started
    _tag_each_blocks_language()
    os.nice(NICENESS)
    progress = logging.getLogger("weasyprint.progress")
    progress.setLevel(logging.INFO)
    progress.propagate = False
    progress.addHandler(_Progress(out))
    # Warnings about CSS WeasyPrint skips are not the facilitator's concern.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    _send(out, {"ready": {"import_s": round(import_s, 3)}})
    while (request := _read_request(source)) is not None:
        html, base_url = request
        began = time.perf_counter()
        try:
            document = HTML(string=html, base_url=base_url).render()
            # Tagged (PDF/UA-1): a screen reader follows headings, lists and tables, in the
            # language of the document's <html lang> and of each element with a lang.
            pdf = document.write_pdf(pdf_variant="pdf/ua-1")
        except Exception:  # noqa: BLE001  (reported to the server, the worker carries on)
            _send(out, {"error": traceback.format_exc()[-2000:]})
            continue
        _send(
            out,
            {
                "pdf_bytes": len(pdf),
                "pages": len(document.pages),
                "render_s": round(time.perf_counter() - began, 3),
                "rss_mb": round(_rss_bytes() / 2**20, 1),
            },
            pdf,
        )
        del document, pdf


if __name__ == "__main__":
    main()
