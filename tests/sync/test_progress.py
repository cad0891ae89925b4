"""The sync's progress: the CLI's bar as plain lines when its output is not a terminal, redrawn in
place on one; the page follows a run without a reload (tests/browser/test_readme_walk.py)."""
from __future__ import annotations

import re

from hub.sync.web import ProgressBar

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def feed(bar: ProgressBar, clock: list[float], monkeypatch) -> None:
    monkeypatch.setattr("hub.sync.web.time.monotonic", lambda: clock[0])
    for done in range(0, 101):
        clock[0] += 0.1
        bar("read_crm", done, None if done < 100 else 100)
    for done in range(0, 51):
        clock[0] += 0.1
        bar("create_google", done, 50)
    bar("create_google", 50, 50)          # the end reported again
    bar.close()


def test_plain_lines_without_control_characters_when_not_a_terminal(monkeypatch):
    lines: list[str] = []
    bar = ProgressBar(echo=lambda text="", nl=True: lines.append(text), tty=False, plain_every=5.0)
    feed(bar, [0.0], monkeypatch)
    assert not [line for line in lines if CONTROL.search(line)]
    assert lines[0] == "read_crm       0"
    assert "read_crm       [##############################] 100/100" in lines
    assert lines[-1] == "create_google  [##############################] 50/50"
    assert lines.count(lines[-1]) == 1
    assert len(lines) <= 8                 # a state every 5 s of a 15 s run, not one per call


def test_redrawn_in_place_on_a_terminal(monkeypatch):
    out: list[tuple[str, bool]] = []
    bar = ProgressBar(echo=lambda text="", nl=True: out.append((text, nl)), tty=True)
    feed(bar, [0.0], monkeypatch)
    drawn = [text for text, nl in out if not nl]
    assert drawn and all(text.startswith("\r") for text in drawn)
    assert drawn[-1] == "\rcreate_google  [##############################] 50/50"
