"""A scripted user session in Debian's headless Chromium, driven by selenium and chromedriver.

test_browser.py runs it through the sandbox's load balancer; it runs the same against any
server of the reference app, e.g. one started locally while changing the page:

    .venv/bin/python tests/integration/browser_session.py http://127.0.0.1:5000/

The page is driven by the element ids app/fleetapp/assets/app.js gives its controls (the app's
test_web.py keeps them in place). Every step has a deadline; a failure names the step.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless in a container as root, and nothing that reaches out to the internet on its own.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic", "--disable-default-apps",
                  "--disable-dev-shm-usage", "--window-size=1280,900")
STEP_TIMEOUT_S = 15


class BrowserError(AssertionError):
    """A step of the session did not do what a user would see it do."""


@dataclass
class Session:
    """One browser and the timings of the steps taken in it."""

    driver: webdriver.Chrome
    base_url: str
    steps: list[tuple[str, float]] = field(default_factory=list)

    def step(self, name: str, action: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            result = action()
        except WebDriverException as exc:
            raise BrowserError(f"step '{name}': {exc.msg or exc}{self._console()}") from exc
        except BrowserError as exc:
            raise BrowserError(f"step '{name}': {exc}{self._console()}") from exc
        self.steps.append((name, time.monotonic() - started))
        return result

    def _console(self) -> str:
        """The console's errors, for a failure's message (a failed request names its cause)."""
        try:
            errors = self.console_errors()
        except WebDriverException:
            return ""
        return f"; console errors: {errors}" if errors else ""

    def wait(self, what: str, condition: Callable[[webdriver.Chrome], Any],
             timeout: float = STEP_TIMEOUT_S) -> Any:
        # The page re-renders as answers arrive: an element found a moment ago may be gone.
        waiting = WebDriverWait(self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException))
        try:
            return waiting.until(condition)
        except TimeoutException:
            error = self.text_of("error")
            raise BrowserError(f"waited {timeout:.0f}s for {what}"
                               + (f"; the page shows: {error}" if error else "")) from None

    def by_id(self, element_id: str):
        return self.driver.find_element(By.ID, element_id)

    def type_into(self, element_id: str, text: str) -> None:
        """Replace a field's text with key presses, as a user would (the page's state follows
        input events, which a programmatic clear would not send)."""
        element = self.by_id(element_id)
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE)
        element.send_keys(text)

    def text_of(self, element_id: str) -> str:
        found = self.driver.find_elements(By.ID, element_id)
        return found[0].text if found else ""

    def console_errors(self) -> list[str]:
        """Console messages of level SEVERE since the last call (the log is drained)."""
        return [entry["message"] for entry in self.driver.get_log("browser")
                if entry.get("level") == "SEVERE"]


@contextmanager
def chromium(base_url: str, insecure_tls: bool = False) -> Iterator[Session]:
    """A fresh headless Chromium (its own profile directory), closed afterwards."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if insecure_tls:
        options.add_argument("--ignore-certificate-errors")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory(prefix="fleet-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield Session(driver, base_url.rstrip("/") + "/")
        finally:
            driver.quit()


def load_page(s: Session) -> str:
    """Open the page; wait for the app to render the papers. Returns the release id shown."""
    s.driver.get(s.base_url)
    s.wait("the papers list", lambda d: d.find_elements(By.CSS_SELECTOR, "#papers li"))
    return s.text_of("release-id")


def register(s: Session, email: str, password: str) -> None:
    s.type_into("auth-email", email)
    s.type_into("auth-password", password)
    s.by_id("register-button").click()
    s.wait("'Signed in as' after registering",
           lambda d: d.find_elements(By.ID, "signed-in")
           and email in d.find_element(By.ID, "signed-in").text)


def log_out(s: Session) -> None:
    s.by_id("logout-button").click()
    s.wait("the sign-in form after logging out", lambda d: d.find_elements(By.ID, "auth-email"))


def log_in(s: Session, email: str, password: str) -> None:
    s.type_into("auth-email", email)
    s.type_into("auth-password", password)
    s.by_id("login-button").click()
    s.wait("'Signed in as' after logging in",
           lambda d: d.find_elements(By.ID, "signed-in")
           and email in d.find_element(By.ID, "signed-in").text)


def search(s: Session, term: str) -> list[str]:
    """Search; wait until every listed paper matches. Returns the titles shown."""
    s.type_into("search-input", term)
    s.by_id("search-button").click()

    def matching(d: webdriver.Chrome) -> list[str] | None:
        titles = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#papers li h3")]
        if titles and all(term.lower() in t.lower() for t in titles):
            return titles
        return None

    return s.wait(f"papers matching {term!r}", matching)


def star_first(s: Session) -> str:
    """Star the first listed paper; wait for its button to show it starred. Returns its id."""
    item = s.driver.find_element(By.CSS_SELECTOR, "#papers li")
    paper_id = item.get_attribute("data-paper-id")
    item.find_element(By.CSS_SELECTOR, "button.star").click()
    selector = f'#papers li[data-paper-id="{paper_id}"] button.star'
    s.wait(f"paper {paper_id} starred",
           lambda d: d.find_element(By.CSS_SELECTOR, selector).get_attribute("aria-pressed")
           == "true")
    return paper_id


def starred_ids(s: Session) -> list[Any]:
    """What the API says the signed-in user starred (asked from the page, with its cookie)."""
    return s.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/stars', {credentials: 'same-origin'}).then(r => r.json())"
        ".then(b => done(b.items.map(p => String(p.id)))).catch(e => done(['error: ' + e]));")


def user_session(s: Session, term: str = "consensus") -> dict[str, Any]:
    """The scripted session: load, register, log out and in, search, star. What it saw."""
    email = f"browser-{uuid.uuid4().hex[:10]}@example.org"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    release = s.step("load the page", lambda: load_page(s))
    errors = s.console_errors()
    if errors:
        raise BrowserError(f"console errors after loading the page: {errors}")
    s.step("register", lambda: register(s, email, password))
    s.step("log out", lambda: log_out(s))
    s.step("log in", lambda: log_in(s, email, password))
    titles = s.step(f"search {term!r}", lambda: search(s, term))
    paper_id = s.step("star a paper", lambda: star_first(s))
    stars = s.step("read the stars back", lambda: starred_ids(s))
    if stars != [paper_id]:
        raise BrowserError(f"starred paper {paper_id}, the API lists {stars}{s._console()}")
    s.step("reload: still signed in, still starred", lambda: (
        load_page(s),
        s.wait("the star after a reload", lambda d: d.find_element(
            By.CSS_SELECTOR, f'#papers li[data-paper-id="{paper_id}"] button.star'
        ).get_attribute("aria-pressed") == "true" if d.find_elements(
            By.CSS_SELECTOR, f'#papers li[data-paper-id="{paper_id}"]') else False)))
    errors = s.console_errors()
    if errors:
        raise BrowserError(f"console errors during the session: {errors}")
    return {"release": release, "email": email, "titles": titles, "starred": paper_id}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: browser_session.py BASE_URL", file=sys.stderr)
        return 2
    started = time.monotonic()
    with chromium(argv[0], insecure_tls=argv[0].startswith("https://")) as s:
        seen = user_session(s)
    for name, seconds in s.steps:
        print(f"{seconds:6.2f}s  {name}")
    print(f"{time.monotonic() - started:6.2f}s  in all (browser start included); "
          f"release {seen['release']}, {len(seen['titles'])} papers found, "
          f"starred {seen['starred']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
