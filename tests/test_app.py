"""The web page (python -m cstylegan.app) as a user runs it: over HTTP, then in headless Chromium."""

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import COLOURS, REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PROJECT_STEPS = 5  # enough to run the projector end to end; the test is not about its quality


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(snapshot_path, port, log_dir: Path, *extra) -> subprocess.Popen:
    """The app in a subprocess, its output in files (a pipe nobody reads could fill and stall it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cstylegan.app", "--network", str(snapshot_path), "--port", str(port), *extra],
        cwd=REPO, stdout=(log_dir / "stdout.txt").open("w"), stderr=(log_dir / "stderr.txt").open("w"))


@pytest.fixture(scope="module")
def server(snapshot_path, tmp_path_factory):
    """(base URL, log folder) of a running app; stopped after the module's tests."""
    log_dir = tmp_path_factory.mktemp("app")
    port = free_port()
    process = start_app(snapshot_path, port, log_dir, "--device", "cpu", "--project-steps", str(PROJECT_STEPS))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/info", timeout=5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the app did not answer: {(log_dir / 'stderr.txt').read_text()}")
            time.sleep(0.3)
    yield url, log_dir
    process.terminate()
    process.wait(timeout=30)


def get(url: str, data: bytes = None) -> tuple:
    """(status, content type, body) of a GET, or a POST when data is given; HTTP errors included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=120) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


@pytest.mark.slow
def test_prints_where_it_serves(server, snapshot_path):
    url, log_dir = server
    assert (log_dir / "stdout.txt").read_text() == f"Serving {snapshot_path} on {url} (Ctrl-C to stop)\n"


def test_info_lists_the_classes_as_style_and_gender(server):
    status, content_type, body = get(f"{server[0]}/api/info")
    info = json.loads(body)
    assert (status, content_type) == (200, "application/json")
    assert [c["name"] for c in info["classes"]] == list(COLOURS)
    assert info["classes"][0] == dict(name="red_male", style="red", gender="male", seen=True)
    assert info["styles"] == ["red", "green", "blue", "yellow"] and info["genders"] == ["male", "female"]
    assert info["resolution"] == 16 and info["num_ws"] >= 2


@pytest.mark.parametrize("name", ["red_male", "yellow_female"])
def test_image_is_a_png_of_the_class_at_the_network_resolution(server, name):
    status, content_type, body = get(f"{server[0]}/api/image?class={name}&seed=42&psi=0.7")
    assert (status, content_type) == (200, "image/png")
    image = Image.open(io.BytesIO(body))
    assert image.size == (16, 16)
    assert np.abs(np.asarray(image.convert("RGB")).mean(axis=(0, 1)) - COLOURS[name]).max() < 50


def test_class_swap_takes_the_later_ws_from_the_style_class(server):
    """Swapping at the first layer leaves almost everything to the style class: blue, not red."""
    status, _, body = get(f"{server[0]}/api/image?class=red_male&seed=1&psi=0.7&style_from=blue_male&swap_layer=1")
    assert status == 200
    assert np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).mean(axis=(0, 1)).argmax() == 2


def test_every_class_grid_has_a_tile_per_class(server):
    status, content_type, body = get(f"{server[0]}/api/every-class?seed=3&psi=0.7")
    assert (status, content_type) == (200, "image/png")
    pixels = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).reshape(-1, 3).astype(int)
    for colour in COLOURS.values():
        assert (np.abs(pixels - colour).max(axis=1) < 50).sum() >= 16 * 16 // 2


@pytest.mark.parametrize("path, data, message", [
    ("/api/image?class=purple_male&seed=1&psi=0.7", None, "class='purple_male' is not a class of this network"),
    ("/api/image?class=red_male&seed=abc&psi=0.7", None, "seed 'abc' is not an integer"),
    ("/api/image?class=red_male&seed=1&psi=nan", None, "psi 'nan' is not a number"),
    ("/api/image?class=red_male&seed=1&psi=0.7&style_from=blue_male&swap_layer=0", None, "swap_layer 0 is outside"),
    ("/api/project?class=red_male&swap_layer=2", b"not a picture", "not an image"),
    ("/api/project?class=red_male&swap_layer=2", bytes(20 * 2**20 + 1), "over 20 MB"),
])
def test_bad_request_gets_400_and_a_one_line_json_error(server, path, data, message):
    status, content_type, body = get(server[0] + path, data)
    assert (status, content_type) == (400, "application/json")
    error = json.loads(body)["error"]
    assert message in error and "\n" not in error and "Traceback" not in error


def test_unknown_path_gets_404(server):
    assert get(f"{server[0]}/api/nothing")[0] == 404


def test_upload_returns_photo_projection_and_every_class(server, tmp_path):
    """Needs cstylegan.projection.optimiser. The result: photo and projection, and beside them the class table."""
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), COLOURS["blue_male"]).save(photo, "PNG")
    status, content_type, body = get(f"{server[0]}/api/project?class=blue_male&swap_layer=2", photo.getvalue())
    assert (status, content_type) == (200, "image/png"), body[:300]
    grid = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)
    assert grid.shape[1] > 4 * 16 and grid.shape[0] > 4 * 16
    assert (np.abs(grid - COLOURS["blue_male"]).max(axis=-1) < 20).sum() >= 16 * 16  # the photo, cropped to 16 px


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "corrupt", "port in use"])
def test_bad_snapshot_or_busy_port_exits_2_with_one_line(snapshot_path, tmp_path, case):
    network = {"missing": tmp_path / "nothing.pt", "corrupt": tmp_path / "corrupt.pt"}.get(case, snapshot_path)
    (tmp_path / "corrupt.pt").write_bytes(b"not a snapshot")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1] if case == "port in use" else free_port()
        process = start_app(network, port, tmp_path, "--device", "cpu")
        assert process.wait(timeout=120) == 2
    stderr = (tmp_path / "stderr.txt").read_text()
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    assert {"missing": "not found", "corrupt": "cannot read", "port in use": "pass another --port"}[case] in stderr


# --- in the browser ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver():
    """Headless Chromium through Debian's chromedriver; Selenium Manager is never asked to download one."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = (f"browser test needs {' and '.join(missing)}: apt-get install chromium chromium-driver "
                  "(or make browser, as root), and pip install selenium")
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--window-size=1000,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield browser
    browser.quit()


def wait_for(driver, condition, timeout=60, what="the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda _: condition(), message=f"timed out waiting for {what}")


def shows(driver, element_id: str) -> str:
    """What request the image with this id answers (the page sets data-shows once it is on screen)."""
    return driver.find_element("id", element_id).get_attribute("data-shows") or ""


def screenshot_of(driver, element_id: str) -> np.ndarray:
    """RGB pixels of the element as the screen shows them: scrolled into view, then cut from
    a screenshot of the viewport by its client rect scaled to device pixels."""
    element = driver.find_element("id", element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    rect = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                 "return [r.left, r.top, r.right, r.bottom, window.devicePixelRatio];", element)
    *box, ratio = rect
    left, top, right, bottom = (round(v * ratio) for v in box)
    assert right - left >= 64 and bottom - top >= 64, f"{element_id} is shown too small: {rect}"
    screen = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"))
    return screen[top:bottom, left:right].astype(int)


def share_of_colour(pixels: np.ndarray, colour) -> float:
    return float((np.abs(pixels - colour).max(axis=-1) < 60).mean())


@pytest.mark.slow
def test_page_draws_the_picked_class_and_restyles_an_uploaded_photo(driver, server, tmp_path):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    url = server[0]
    driver.get(url)
    wait_for(driver, lambda: "class=" in shows(driver, "image"), what="the first image")

    # Red, then three steps right on the seed slider: the image shows red_male at seed 3.
    Select(driver.find_element("id", "style")).select_by_value("red")
    assert Select(driver.find_element("id", "gender")).first_selected_option.get_attribute("value") == "male"
    slider = driver.find_element("id", "seed")
    for _ in range(3):
        slider.send_keys(Keys.ARROW_RIGHT)
    wait_for(driver, lambda: "class=red_male" in shows(driver, "image") and "seed=3&" in shows(driver, "image"),
             what="red_male seed 3")
    assert driver.find_element("id", "seed-number").get_attribute("value") == "3"
    assert share_of_colour(screenshot_of(driver, "image"), COLOURS["red_male"]) > 0.8

    Select(driver.find_element("id", "style")).select_by_value("blue")
    wait_for(driver, lambda: "class=blue_male" in shows(driver, "image"), what="blue_male")
    assert share_of_colour(screenshot_of(driver, "image"), COLOURS["blue_male"]) > 0.8

    # Every class for this seed: each class's colour fills a tile of the grid.
    driver.find_element("id", "every-class").click()
    wait_for(driver, lambda: "seed=3&" in shows(driver, "every-class-grid"), what="the every-class grid")
    grid = screenshot_of(driver, "every-class-grid")
    for name, colour in COLOURS.items():
        assert share_of_colour(grid, colour) > 0.03, name

    # A file that is no image: the server's one-line error appears under the upload.
    (tmp_path / "notes.png").write_text("not a picture")
    driver.find_element("id", "photo").send_keys(str(tmp_path / "notes.png"))
    wait_for(driver, lambda: "not an image" in driver.find_element("id", "photo-status").text, what="the error")

    # A face photo (here a yellow square): projected, then drawn as every class.
    Image.new("RGB", (48, 64), COLOURS["yellow_female"]).save(tmp_path / "face.png")
    driver.find_element("id", "photo").send_keys(str(tmp_path / "face.png"))
    wait_for(driver, lambda: "face.png" in shows(driver, "photo-result"), timeout=300, what="the projection")
    assert "projection" in driver.find_element("id", "photo-status").text
    result = screenshot_of(driver, "photo-result")
    assert share_of_colour(result, COLOURS["yellow_female"]) > 0.02  # at least the photo's own tile
    assert share_of_colour(result, (255, 255, 255)) < 0.9  # and drawn tiles, not only white
    assert not driver.find_element("id", "image-status").text
