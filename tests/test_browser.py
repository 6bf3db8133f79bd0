"""The chat page in a real browser (Playwright driving the system Chromium),
with the real models: ask, watch the answer arrive, click a citation chip, and
add an article and ask about it.

`UPDATE_SCREENSHOT=1 pytest tests/test_browser.py` also refreshes
docs/screenshot.png from the first test.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from rag import config

from .conftest import ROOT, SEEDS

# Gradio 6.31's queue calls pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword)")]

CHROMIUM = Path("/usr/bin/chromium")
# No browser download: the system Chromium, with its calls home switched off
# (the machine's network is closed, and each refused call costs time).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWER_TIMEOUT_MS = 300_000  # the first answer may load (or even dequantize) the model
PATENTS = "How many AI patents per 100,000 people did Korea have in 2022?"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from .chat_server import serve

    root = tmp_path_factory.mktemp("project")
    shutil.copytree(SEEDS, root / "seeds")  # a copy: a test uploads an article into it
    with serve(config.load(root=root, config_file=root / "none.toml")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("needs Chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS, headless=True, viewport={"width": 1280, "height": 860})
        yield context
        context.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page()
    page.goto(app_url)
    page.wait_for_selector("#question textarea", timeout=60_000)
    yield page
    page.close()


def ask(page, question: str) -> None:
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")


def test_answer_streams_in_a_chip_shows_its_quote_and_a_follow_up_is_rewritten(page, tmp_path):
    from playwright.sync_api import expect

    page.locator("button.example", has_text=PATENTS).click()  # an example question, on the empty chat
    # The first question of a fresh server also builds the index and loads the embedder.
    expect(page.locator(".msg.user")).to_have_text(PATENTS, timeout=120_000)
    # Sources first, then the answer with its chips.
    expect(page.locator(".sources-head").first).to_be_visible(timeout=60_000)
    answer = page.locator(".answer-text")
    expect(answer).to_contain_text("10.26", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator(".msg.bot .timings")).to_contain_text("total")
    expect(page.locator("#question textarea")).to_be_editable()

    chip = answer.locator(".chip").first
    target = chip.get_attribute("data-target")
    page.locator("#transcript").evaluate("e => e.querySelectorAll('*').forEach(n => { n.scrollTop = 0 })")
    chip.click()
    source = page.locator(f'[data-source="{target}"]')
    expect(source).to_have_class(re.compile(r"\bflash\b"))  # the chip's handler ran
    quote = source.locator("mark")
    expect(quote).to_be_in_viewport()
    assert "10.26" in quote.inner_text()
    assert "002_f3264cf3099be723" in source.inner_text()

    # A follow-up is rewritten into a standalone question, shown, and answered.
    ask(page, "And Japan?")
    expect(page.locator(".rewritten")).to_have_text(
        "Asked as: “How many AI patents per 100,000 people did Japan have in 2022?”", timeout=60_000)
    reply = page.locator('[data-turn="1"] .msg.bot:not(.draft)')  # an answer, or a refusal: no waiting on
    expect(reply).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(reply.locator(".answer-text")).to_contain_text("2.53")
    expect(page.locator("#question textarea")).to_be_editable()

    shot = ROOT / "docs" / "screenshot.png" if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "shot.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot))
    from PIL import Image  # comes with gradio

    with Image.open(shot) as image:  # a 256-colour palette keeps the committed file small
        image.convert("RGB").quantize(256).save(shot, optimize=True)


def test_an_uploaded_article_is_listed_and_answered_from(page, tmp_path):
    from playwright.sync_api import expect

    article = tmp_path / "vostrel_station.txt"
    article.write_text(
        "Glaciologists flock to the new Lake Vostrel research station\n"
        "The Lake Vostrel research station opened in northern Norway on 3 March 2025. "
        "The station employs 47 glaciologists, who study how the lake's ice sheet has thinned since 1990.\n"
        "Its director, Ingrid Halvorsen, said the station cost 310 million kroner to build.\n",
        encoding="utf-8")
    page.set_input_files("#upload input[type=file]", str(article))
    expect(page.locator("#upload-status")).to_contain_text("Added vostrel_station", timeout=120_000)
    expect(page.locator("#articles")).to_contain_text("Glaciologists flock to the new Lake Vostrel research station")

    ask(page, "How many glaciologists does the Lake Vostrel research station employ?")
    answer = page.locator(".answer-text")
    expect(answer).to_contain_text("47", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator('.source:not(.passage)').first).to_contain_text("vostrel_station")


def test_the_draft_streams_and_stop_ends_it(page):
    from playwright.sync_api import expect

    ask(page, "Why do Korean AI researchers leave for the U.S.?")
    # Words of the draft arrive while the model writes (the cursor marks a draft in progress).
    expect(page.locator(".msg.bot.draft .cursor")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    page.click("#stop")
    expect(page.locator(".msg.bot").last).to_contain_text(re.compile(r"Stopped"), timeout=60_000)
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#question textarea")).to_be_editable()
