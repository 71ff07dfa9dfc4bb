"""Issue 17's scenario in Debian's Chromium over real HTTP: sign in, approve a handoff, record
a call outcome with a promise date, see the dossier and the plan change; a request without
the CSRF token and a viewer approving both get 403.

With ``DEBSYNC_SCREENSHOT=path.png`` the test also saves the plan page and the dashboard,
one above the other, as the README's screenshot (``docs/web-console.png``)::

    DEBSYNC_SCREENSHOT=docs/web-console.png .venv/bin/pytest tests/test_web_browser.py
"""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from debsync.config import load_config
from debsync.facts import PauseKind
from debsync.outbox import rows
from debsync.pauses import active_pauses
from debsync.plugins import Plugins
from debsync.store import open_store
from debsync.store.schema import ActionState
from web_book import NOW, TODAY, USERS, seed

from conftest import FrozenClock

pytest_plugins = ["browser"]  # the web_console and browser_page fixtures


@pytest.fixture
def book(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded book, walked before Playwright's loop runs in this thread (the walk runs
    the CLI, which runs its own)."""
    return seed(tmp_path, tmp_path_factory.getbasetemp() / "web-book")


def test_a_working_day_in_the_console(book: Path, web_console: Any, browser_page: Any) -> None:
    config = load_config(book, Plugins())
    store = open_store(config.store_url)
    served = web_console(config, store, FrozenClock(NOW), users=USERS)
    url = served.url
    page = browser_page
    handoff = next(r for r in rows(store) if r.step == "handoff")

    served.log_in(page, "anna")
    page.get_by_role("link", name="Plan van vandaag").click()
    assert page.locator("tbody tr").count() == 2
    d2 = page.locator("tbody tr", has_text="Oak & Ivy Consulting Ltd")
    assert d2.get_by_text("nog niet ingepland").is_visible()
    shots = [page.screenshot(full_page=True)] if os.environ.get("DEBSYNC_SCREENSHOT") else []
    page.get_by_role("button", name="Akkoord: Bakkerij De Gouden Korrel B.V. handoff").click()
    page.get_by_text("1 actie(s) verwerkt: akkoord gegeven.").wait_for()
    d1 = page.locator("tbody tr", has_text="Bakkerij De Gouden Korrel B.V.")
    assert d1.get_by_text("akkoord gegeven").is_visible()
    assert next(r for r in rows(store) if r.key == handoff.key).state == ActionState.APPROVED

    page.get_by_role("link", name="Bellijst").click()
    call = page.locator("section", has=page.get_by_role("heading", name="Oak & Ivy Consulting Ltd"))
    promised = TODAY + timedelta(days=10)
    call.get_by_label("Betalingsbelofte").check()
    call.get_by_label("Beloofde betaaldatum").fill(promised.isoformat())
    call.get_by_label("Beloofd bedrag (optioneel)").fill("350.00")
    call.get_by_role("button", name="Uitkomst vastleggen").click()
    page.get_by_text(
        "Uitkomst vastgelegd: Betalingsbelofte; 1 factuur/facturen gepauzeerd."
    ).wait_for()
    assert page.get_by_role("heading", name="Oak & Ivy Consulting Ltd").count() == 0

    page.get_by_role("link", name="Debiteuren").click()
    page.get_by_label("Zoek op naam, debiteurnummer of factuurnummer").fill("F-003")
    page.get_by_role("button", name="Zoeken").click()
    page.get_by_role("link", name="Oak & Ivy Consulting Ltd").click()
    page.get_by_role("heading", name="Dossier Oak & Ivy Consulting Ltd").wait_for()
    pauses = page.locator("section", has=page.get_by_role("heading", name="Pauzes"))
    assert "betalingsbelofte op F-003 door anna" in pauses.inner_text()
    assert f"tot {promised:%d-%m-%Y}" in pauses.inner_text()
    (pause,) = active_pauses(store)
    assert (pause.kind, pause.author) == (PauseKind.PROMISE, "anna")

    page.get_by_role("link", name="Plan van vandaag").click()
    assert page.locator("tbody tr").count() == 1  # D2's handoff waits for the promise
    assert page.locator("tbody tr", has_text="Oak & Ivy").count() == 0

    forged = page.request.post(f"{url}/plan", form={"approve_one": handoff.key})
    assert forged.status == 403

    if shots:
        page.get_by_role("link", name="Overzicht").click()
        shots.append(page.screenshot(full_page=True))
        _save(shots, Path(os.environ["DEBSYNC_SCREENSHOT"]))

    viewer = page.context.browser.new_context(locale="nl-NL")
    try:
        as_viewer = viewer.new_page()
        served.log_in(as_viewer, "vera")
        as_viewer.goto(f"{url}/plan")
        token = as_viewer.locator('input[name="csrf"]').first.get_attribute("value")
        refused = as_viewer.request.post(
            f"{url}/plan", form={"csrf": token, "approve_one": handoff.key}
        )
        assert refused.status == 403
    finally:
        viewer.close()
    store.dispose()


def _save(shots: list[bytes], path: Path) -> None:
    """The screenshots one above the other, halved, as a small palette PNG."""
    from PIL import Image

    images = [Image.open(io.BytesIO(shot)) for shot in shots]
    width = max(i.width for i in images)
    sheet = Image.new("RGB", (width, sum(i.height for i in images)), "white")
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height
    sheet = sheet.resize((width // 2, sheet.height // 2), Image.Resampling.LANCZOS)
    sheet.quantize(colors=64).save(path, optimize=True)
