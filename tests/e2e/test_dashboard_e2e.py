"""The dashboard in a real browser: Playwright drives Debian's Chromium (headless) against ``koe serve``.

One journey, as a CX analyst would take it: sign in, drop a CP932 export with Japanese headers, fix one
column's role, start, watch the progress bar finish, read the NPS (checked against a hand computation),
open a theme, filter its comments and export them. Screenshots go to the test's tmp_path and to
/tmp/koe-dashboard-shots/ for a person to look at.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.test_cli import _hand_nps as hand_nps

ROOT = Path(__file__).parents[2]
SURVEY = ROOT / "examples" / "survey_cp932.csv"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/koe-dashboard-shots")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMAIL, PASSWORD = "analyst@example.com", "とても長いパスワード-2026"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
]


def _hand_nps(path: Path) -> float:
    """NPS straight from the file, counted by hand as in tests/service/test_cli.py."""
    return hand_nps(path)[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("koe-data")
    env = {
        **os.environ,
        "KOE_DATA_DIR": str(data),
        "KOE_BOOTSTRAP_SAMPLES": "300",
        "KOE_JOB_CHUNK_ROWS": "40",  # several chunks, so the progress bar has steps to show
        "KOE_LOG_LEVEL": "WARNING",
    }
    env.pop("KOE_DATABASE_URL", None)
    koe = [sys.executable, "-m", "service.cli"]
    subprocess.run(
        [
            *koe,
            "user",
            "create",
            "--email",
            EMAIL,
            "--role",
            "analyst",
            "--name",
            "分析 花子",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    port = _free_port()
    proc = subprocess.Popen([*koe, "serve", "--port", str(port)], env=env, cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/app/login", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_analyst_journey(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "shots"
    shots.mkdir()

    def shot(page: object, name: str, full_page: bool = True) -> None:
        path = shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]

    with sync_playwright() as p:
        # a fresh profile per run (launch_persistent_context is Playwright's form of --user-data-dir)
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS[1:],  # --headless comes from headless=True
            locale="ja-JP",
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
        )
        page = context.new_page()
        page.set_default_timeout(30_000)

        # sign in
        page.goto(f"{server}/app/upload")
        expect(page).to_have_url(f"{server}/app/login?next=%2Fapp%2Fupload")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        shot(page, "01-login")
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{server}/app/upload")

        # drop the CP932 export onto the drop zone, as a browser drag-and-drop would deliver it
        payload = list(SURVEY.read_bytes())
        page.evaluate(
            """([bytes, name]) => {
                const file = new File([new Uint8Array(bytes)], name, {type: "text/csv"});
                const dt = new DataTransfer(); dt.items.add(file);
                document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
            }""",
            [payload, SURVEY.name],
        )
        role = page.locator('select.role[data-column="地域"]')
        expect(role).to_have_value("segments")
        expect(page.locator("#mapping")).to_contain_text("推奨度（0～10）")
        expect(page.locator("#mapping")).to_contain_text(
            "推奨度は0〜10の整数で入力してください"
        )  # a problem found
        role.select_option("ignore")  # fix one column: 地域 is not a segment we want
        shot(page, "02-mapping")
        page.click("#start")

        # the progress bar runs to completion
        page.wait_for_url("**/app/jobs/*")
        shot(page, "03-progress")
        expect(page.locator("#job")).to_have_attribute("data-state", "succeeded", timeout=600_000)
        expect(page.locator("#job-progress")).to_have_attribute("value", "100")
        shot(page, "04-progress-done")
        page.click("#job-done a")

        # the NPS on the overview equals the hand computation
        score = page.locator("#nps-score")
        expect(score).to_be_visible()
        shown = float(score.get_attribute("data-score") or "nan")
        assert shown == pytest.approx(_hand_nps(SURVEY), abs=0.05)
        assert score.inner_text().replace("−", "-") == f"{_hand_nps(SURVEY):+.1f}"  # shown with U+2212
        expect(page.locator("main")).not_to_contain_text("地域")  # the fixed mapping took effect
        expect(page.locator("main")).to_contain_text("プラン")
        images = page.locator("figure.chart img")
        assert images.count() >= 3
        assert all(images.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(images.count()))
        shot(page, "05-overview")

        page.click("nav.tabs >> text=ドライバー")
        expect(page.locator("table.drivers tbody tr").first).to_be_visible()
        shot(page, "06-drivers")

        # open a theme, filter its comments, export them
        page.click("nav.tabs >> text=テーマ")
        shot(page, "07-themes")
        link = page.locator("a.theme-link").first
        theme_id = link.get_attribute("data-theme")
        link.click()
        expect(page.locator("select[name=theme]")).to_have_value(theme_id or "")
        expect(page.locator("ol.comments mark").first).to_be_visible()  # matched sentences highlighted
        all_rows = int(page.locator("#total").inner_text())
        page.select_option("select[name=sentiment]", "negative")
        page.click("#filters button[type=submit]")
        expect(page.locator("select[name=sentiment]")).to_have_value("negative")
        negative = int(page.locator("#total").inner_text())
        assert 0 < negative < all_rows
        shot(page, "08-comments-filtered", full_page=False)  # the top: filters, count, highlights
        with page.expect_download() as info:
            page.click("#export")
        saved = tmp_path / "export.csv"
        info.value.save_as(saved)
        with saved.open(encoding="utf-8-sig", newline="") as fh:
            exported = list(csv.DictReader(fh))
        assert len(exported) == negative and "回答ID" in exported[0]
        context.close()

    SHOTS.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, SHOTS / png.name)
