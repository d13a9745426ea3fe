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
from typing import Any

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
# Kana and kanji on the page that draw exactly like a code point no font has (U+F0000): tofu, i.e. the
# browser found no Japanese font (install one, e.g. Debian's fonts-ipaexfont-gothic).
TOFU_JS = """() => {
  const family = getComputedStyle(document.body).fontFamily;
  const pixels = (s) => {
    const c = document.createElement("canvas"); c.width = 48; c.height = 48;
    const g = c.getContext("2d"); g.font = "32px " + family; g.fillText(s, 4, 36);
    return Array.from(g.getImageData(0, 0, 48, 48).data).join();
  };
  const missing = pixels("\\u{F0000}");
  const chars = new Set(Array.from(document.body.innerText).filter((ch) => /[\\u3040-\\u30ff\\u4e00-\\u9fff]/.test(ch)));
  return {checked: chars.size, tofu: Array.from(chars).filter((ch) => pixels(ch) === missing)};
}"""

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


def _keep_shots(shots: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for png in shots.glob("*.png"):
        shutil.copy(png, SHOTS / png.name)


def _sign_in(page: Any, server: str, path: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server}{path}")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server}{path}")


def test_analyst_journey(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "shots"
    shots.mkdir()

    def shot(page: Any, name: str, full_page: bool = True) -> None:
        found = page.evaluate(TOFU_JS)
        assert found["checked"] > 0 and not found["tofu"], f"{name}: no Japanese font for {found['tofu']}"
        page.screenshot(path=str(shots / f"{name}.png"), full_page=full_page)

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

        # a taxonomy change, tried on a sample of this survey before saving
        page.click("header nav >> text=テーマ分類")
        merge = page.locator("form.card", has_text="テーマを統合")
        merge.locator("select[name=theme]").select_option("price")
        merge.locator("select[name=into]").select_option("product_quality")
        merge.locator("button[type=submit]").click()
        expect(page.locator("#effect h3")).to_contain_text("分類への影響")
        expect(page.locator("#effect-n")).to_have_text("200")  # a bounded sample, and the page says so
        expect(page.locator('table.effect tr[data-theme="price"]')).to_contain_text("に統合")
        expect(
            page.locator('table.effect tr[data-theme="product_quality"] td.gained q').first
        ).to_be_visible()
        shot(page, "09-taxonomy-preview")
        page.click("text=取り消す")  # nothing saved
        expect(page.locator("h1")).to_have_text("テーマ分類（バージョン 1）")

        # the weekly report: subscribe, see it listed, preview the next one
        page.click("header nav >> text=レポート配信")
        expect(page.locator("main")).to_contain_text("配信の設定はまだありません")
        form = page.locator("form.card", has_text="配信を追加")
        form.locator("input[name=name]").fill("CX 週次レポート")
        form.locator("textarea[name=recipients]").fill("cx-team@example.com\nmanager@example.com")
        form.locator("select[name=weekday]").select_option(label="金曜")
        form.locator("input[name=send_time]").fill("08:30")
        form.locator("button[type=submit]").click()
        row = page.locator("main table tbody tr", has_text="CX 週次レポート")
        expect(row).to_contain_text("cx-team@example.com, manager@example.com")
        expect(row).to_contain_text("毎週金曜 08:30（Asia/Tokyo）")
        expect(row).to_contain_text("有効")
        shot(page, "10-subscriptions")
        with context.expect_page() as opened:
            row.locator("text=次回のレポートをプレビュー").click()
        report = opened.value
        report.wait_for_load_state()
        expect(report.locator("body")).to_contain_text("NPS")
        shot(report, "11-report-preview")
        report.close()
        expect(row).to_contain_text(SURVEY.name)  # the survey by its file name

        page.click("header .who >> text=分析 花子")  # the signed-in user's own account
        expect(page.locator("#account-form")).to_contain_text("現在のパスワード")
        shot(page, "12-account")
        context.close()

    _keep_shots(shots)


def test_upload_without_javascript(server: str, tmp_path: Path) -> None:
    """The same upload with JavaScript switched off: plain forms from the file to the results. After the
    journey above it is recognised as a duplicate; alone, it waits for the analysis (the progress page
    reloads itself without JavaScript)."""
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "shots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS[1:])
        context = browser.new_context(
            java_script_enabled=False, locale="ja-JP", viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        _sign_in(page, server, "/app/upload")
        expect(page.locator("#drop label.button")).to_be_hidden()  # drag-and-drop needs JavaScript
        page.set_input_files("#file", str(SURVEY))
        page.click("#upload-form button[type=submit]")
        expect(page).to_have_url(f"{server}/app/upload/preview")
        role = page.locator('select.role[data-column="地域"]')
        expect(role).to_have_value("segments")
        role.select_option("ignore")
        found = page.evaluate(TOFU_JS)  # Playwright's own scripts run with the page's JavaScript off
        assert found["checked"] > 0 and not found["tofu"], found
        page.screenshot(path=str(shots / "13-upload-without-javascript.png"), full_page=True)
        page.click("#start")
        page.wait_for_url("**/app/jobs/*")
        expect(page.locator("#job-done a")).to_be_visible(timeout=600_000)
        page.click("#job-done a")
        expect(page.locator("#nps-score")).to_be_visible()
        expect(page.locator("main")).not_to_contain_text("地域")  # the role chosen in the form took effect
        context.close()
        browser.close()
    _keep_shots(shots)
