"""The listening page, the evaluate report and a Trackio dashboard, opened in headless Chromium (Debian's
``chromium`` and ``chromedriver``, which ``make test`` installs) and driven with Selenium. Each test
saves a screenshot; set ``F5RL_SCREENSHOTS=docs/screenshots`` to keep them where the README links."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.app.conftest import make_prefs_round
from tests.conftest import free_port

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium is not installed (`make browser` installs Debian's chromium and chromium-driver)")]
TEXT = "The train to the coast was late by almost an hour."


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}): {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer in {seconds:.0f} s")


def serve(argv: list[str], url: str, env: dict | None = None):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})})
    try:
        wait_http(url, proc)
    except BaseException:
        proc.kill()
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def browser():
    pytest.importorskip("selenium", reason="selenium is in the dev extra")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        opts.add_argument(a)
    opts.binary_location = CHROMIUM
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_script_timeout(60)
    yield d
    d.quit()


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 120, 900), 4000))  # the whole page, not its first screen
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1100)
    keep = os.environ.get("F5RL_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    assert path.stat().st_size > 10_000, "an empty page"
    return path


def wait_text(driver, css: str, pattern: str, seconds: float = 300) -> str:
    from selenium.webdriver.common.by import By

    end, text = time.time() + seconds, ""
    while time.time() < end:
        text = driver.find_element(By.CSS_SELECTOR, css).text
        if re.search(pattern, text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"{css} never showed {pattern!r}; it shows {text!r}")


def media_duration(driver, url: str) -> float:
    """Seconds of the clip at ``url`` as the browser's own media element decodes it."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const a = new Audio(arguments[0]);"
        "a.onloadedmetadata = () => done(a.duration); a.onerror = () => done(-1);", url)


def test_the_page_synthesises_with_the_shipped_base_and_shows_scores(browser, demo_corpus, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    item = json.loads((demo_corpus / "test_eval.jsonl").read_text().splitlines()[0])
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = serve([sys.executable, "-m", "f5rl.app", "--port", str(port), "--corpus", str(demo_corpus), "--nfe", "8",
                  "--prompt", str(demo_corpus / item["prompt_wav"]), "--prompt_text", item["prompt_text"]], url)
    try:
        browser.get(url)
        box = wait_for(browser, "#text textarea")
        box.send_keys(TEXT)
        browser.find_element(By.CSS_SELECTOR, "#synthesise").click()
        assert wait_text(browser, "#status", r"Done|Problem").startswith("Done"), "synthesis failed"
        scores = wait_text(browser, "#out_scores_0", r"heard:")
        seconds = float(re.search(r"· ([\d.]+) s", scores).group(1))
        cer, wer, sim = (float(x) for x in re.search(r"\n([\d.]+) ([\d.]+) ([-\d.]+) ", scores).groups())
        assert 0 <= cer <= 2 and 0 <= wer <= 3 and -1 <= sim <= 1, scores
        link = browser.find_element(By.CSS_SELECTOR, "#out_audio_0 a[download]").get_attribute("href")
        assert abs(media_duration(browser, link) - seconds) < 0.05, (link, seconds)
        mel = browser.find_elements(By.CSS_SELECTOR, "img")
        assert any(browser.execute_script("return arguments[0].naturalWidth", m) > 100 for m in mel), "no mel image"
        shot = screenshot(browser, tmp_path, "app_compare")
        print(f"page: {seconds:.2f} s sample; scores {scores!r}; screenshot {shot}")

        # bad input: the message is in the page, and no traceback
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        browser.find_element(By.CSS_SELECTOR, "#synthesise").click()
        assert "text to say is empty" in wait_text(browser, "#status", r"Problem", 60)
        assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    finally:
        stop(proc)


def wait_for(driver, css: str, seconds: float = 60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_evaluate_report_and_its_rows_in_the_browse_tab(browser, demo_corpus, tmp_path):
    from selenium.webdriver.common.by import By

    from f5rl.eval.base_model import SHIPPED
    from f5rl.eval.evaluate import evaluate

    items = [json.loads(line) for line in (demo_corpus / "test_eval.jsonl").read_text().splitlines()[:3]]
    for it in items:  # the list's wav paths are relative to the corpus
        it.update(prompt_wav=str(demo_corpus / it["prompt_wav"]), target_wav=str(demo_corpus / it["target_wav"]))
    test_list = tmp_path / "three_items.jsonl"
    test_list.write_text("".join(json.dumps(it) + "\n" for it in items))
    out = tmp_path / "eval"
    evaluate([str(SHIPPED / "model.safetensors")], str(test_list), str(out), ground_truth=True, nfe=4, mos=None,
             names=["base"])

    browser.get((out / "report.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "table tr")
    assert len(rows) == 1 + 2  # header, ground truth, base
    imgs = browser.find_elements(By.TAG_NAME, "img")
    assert len(imgs) == 2 and all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)
                                  > 100 for i in imgs), "a plot did not load"
    screenshot(browser, tmp_path, "evaluate_report")

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = serve([sys.executable, "-m", "f5rl.app", "--port", str(port), "--mos", ""], url)
    try:
        browser.get(url)
        tab = wait_for(browser, "button[role='tab']:nth-of-type(2)")
        assert tab.text == "Browse"
        tab.click()
        wait_for(browser, "#folder textarea").send_keys(str(out))
        browser.find_element(By.CSS_SELECTOR, "#open_folder").click()
        assert "evaluate folder: 1 table(s), 2 plot(s)" in wait_text(browser, "#browse_status", "Opened|Problem", 60)
        wait_for(browser, "#rows div[role='row']")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#rows div[role='row']")) == 3  # every utterance
        browser.find_elements(By.CSS_SELECTOR, "#rows [role='gridcell'][data-row='0']")[1].click()
        link = wait_for(browser, "#play_a a[download]", 30).get_attribute("href")
        assert media_duration(browser, link) > 0.3
        screenshot(browser, tmp_path, "app_browse")

        # a prefs round: its pairs first, chosen and rejected side by side
        make_prefs_round(tmp_path / "round")
        box = browser.find_element(By.CSS_SELECTOR, "#folder textarea")
        box.clear()
        box.send_keys(str(tmp_path / "round"))
        browser.find_element(By.CSS_SELECTOR, "#open_folder").click()
        assert "prefs folder: 2 table(s)" in wait_text(browser, "#browse_status", "prefs|Problem", 60)
        wait_text(browser, "#rows", "chosen_cer", 30)
        # opening a folder empties the players: the evaluate folder's clip is gone (it once passed for a pair's)
        assert not browser.find_elements(By.CSS_SELECTOR, "#play_a a[download]")
        browser.find_elements(By.CSS_SELECTOR, "#rows [role='gridcell'][data-row='0']")[1].click()
        chosen = wait_for(browser, "#play_a a[download]", 30).get_attribute("href")
        rejected = wait_for(browser, "#play_b a[download]", 30).get_attribute("href")
        assert link not in (chosen, rejected)
        # the chosen sample is 1.0 s long, the rejected one 1.5 s (tests/app/conftest.py)
        assert abs(media_duration(browser, chosen) - 1.0) < 0.05
        assert abs(media_duration(browser, rejected) - 1.5) < 0.05
        screenshot(browser, tmp_path, "app_browse_pairs")
    finally:
        stop(proc)


def test_trackio_dashboard_lists_the_metrics_of_a_run(browser, tmp_path):
    import importlib.util

    # not imported here: trackio fixes its storage folder from TRACKIO_DIR when first imported, and the
    # trainer's trackio test sets its own later in this process
    if importlib.util.find_spec("trackio") is None:
        pytest.skip("trackio is not installed (the demo extra)")
    store = tmp_path / "trackio"
    env = {**os.environ, "TRACKIO_DIR": str(store)}
    log = ("from f5rl.train.loggers import TrackioLogger\n"
           "lg = TrackioLogger('f5rl-tiny', 'run0', {'optim.learning_rate': 1e-3})\n"
           "[lg.log({'loss/flow': 1 / (s + 1), 'reward/mean': 0.1 * s}, s) for s in range(5)]\n"
           "lg.finish()\n")
    subprocess.run([sys.executable, "-c", log], check=True, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    port = free_port()
    url = f"http://127.0.0.1:{port}/?project=f5rl-tiny"
    trackio = [sys.executable, "-c", "from trackio.cli import main; main()", "show", "--project", "f5rl-tiny"]
    proc = serve(trackio, url, {"TRACKIO_DIR": str(store), "GRADIO_SERVER_PORT": str(port)})
    try:
        browser.get(url)
        body = wait_text(browser, "body", r"reward \(1\)[\s\S]*mean", 90)
        assert "run0" in body and re.search(r"loss \(1\)\s+flow", body), body[-600:]
        screenshot(browser, tmp_path, "trackio_dashboard")
    finally:
        stop(proc)
