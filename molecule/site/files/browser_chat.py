"""Two people chat in real browsers: the site scenario's browser test.

Headless Chromium (Debian's ``chromium``, driven by Playwright for Python; Playwright's own
browsers are never downloaded) signs up two people through the app's forms, each in a
browser context of their own (separate cookies). One enters a room from the index form, the
other follows that room's link on the index. Then each sends a message and must see the
other's arrive live over the WebSocket; the second message carries markup, which must show as
text and never run. Both reload the room and must find both messages in its history. Any
console error, uncaught page error, failed request or HTTP error response in either browser
fails the test. Screenshots of both browsers at each step go to the artifacts folder.

TLS is verified for real. Chromium on Linux trusts the roots of the NSS database in
``$HOME/.pki/nssdb``, so the browser runs with a temporary HOME whose database holds only the
CA given by ``--cafile`` (certutil from libnss3-tools), and checks the chain, the name and the
dates as it would for any site. Not ``--ignore-certificate-errors-spki-list``: a pinned key
makes Chromium ignore every certificate error of a chain that contains it, the name and the
dates included. The name is mapped to the address with ``--host-resolver-rules``, so the page's
origin is ``https://<name>``, as the app's origin checks expect. Before the chat, a browser with
an empty NSS database must refuse the certificate: the trust comes from that database only.

Chromium runs in a network namespace of its own, joined to this machine's network through
slirp4netns (see isolated_network): containers starting and stopping here would otherwise
abort its requests. It needs root, as the scenario does.

Command line (one line per check; exit 1 on the first failure, with the errors seen)::

    python browser_chat.py https://cd-site --address 10.89.0.5 --cafile acme-root.pem \
        --artifacts .ansible/browser/site
"""

from __future__ import annotations

import argparse
import html
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    WebError,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
CERTUTIL = "/usr/bin/certutil"
VIEWPORT = {"width": 900, "height": 640}
UNSHARE = "/usr/bin/unshare"
NSENTER = "/usr/bin/nsenter"
SLIRP4NETNS = "/usr/bin/slirp4netns"
# Seconds the browser's network namespace may take to come up.
NETNS_TIMEOUT = 10.0
# Markup in a message: shown as text it runs nothing; rendered as HTML, the image's error
# handler would set the flag (a script added by innerHTML never runs, an event handler does).
MARKUP = (
    "<b>bold {suffix}</b><script>window.__chatMarkupRan = 1</script>"
    '<img src=x onerror="window.__chatMarkupRan = 2">'
)


class BrowserCheckError(RuntimeError):
    """A check in the browser failed; the message says what was expected and seen."""


@dataclass
class Person:
    """One person: a browser context with its page, and what its console reported."""

    name: str
    password: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    def watch(self) -> None:
        """Record every console error, page error, failed request and HTTP error response."""
        self.context.on("console", self._console)
        self.context.on("weberror", self._weberror)
        self.context.on("requestfailed", self._requestfailed)
        self.context.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.errors.append(f"console error: {message.text}" + (f" ({where})" if where else ""))

    def _weberror(self, error: WebError) -> None:
        self.errors.append(f"page error: {error.error}")

    def _requestfailed(self, request: Request) -> None:
        self.errors.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.request.method} {response.url}")


@dataclass
class Run:
    """The state of one test run: timings, screenshots and the checks passed so far."""

    artifacts: Path
    started: float = field(default_factory=time.monotonic)
    shots: list[Path] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    # What the browsers reported, copied here when a check fails.
    errors: list[str] = field(default_factory=list)

    def passed(self, line: str) -> None:
        """Record and print a passed check, with the seconds since the run started."""
        line = f"{line} [{time.monotonic() - self.started:.1f} s]"
        self.done.append(line)
        print(f"ok: {line}", flush=True)

    def screenshot(self, step: str, people: list[Person]) -> None:
        """Save a full-page PNG of each person's page as ``NN-<step>-<person>.png``."""
        for person in people:
            who = person.name.split("-")[0]
            path = self.artifacts / f"{len(self.shots) + 1:02d}-{step}-{who}.png"
            person.page.screenshot(path=path, full_page=True)
            self.shots.append(path)


@contextmanager
def nss_home(cafile: Path | None):
    """Yield a temporary HOME whose NSS database trusts only ``cafile`` (none if None).

    Raises:
        subprocess.CalledProcessError: certutil could not make the database or add the CA.
    """
    with tempfile.TemporaryDirectory(prefix="browser-chat-") as home:
        nssdb = Path(home) / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        db = f"sql:{nssdb}"
        # certutil is the NSS tool for its databases; nothing in Python writes them.
        subprocess.run(  # noqa: S603 (fixed binary, arguments from this script)
            [CERTUTIL, "-N", "-d", db, "--empty-password"], check=True, capture_output=True
        )
        if cafile is not None:
            subprocess.run(  # noqa: S603 (fixed binary, arguments from this script)
                [CERTUTIL, "-A", "-d", db, "-n", "scenario CA", "-t", "C,,", "-i", str(cafile)],
                check=True,
                capture_output=True,
            )
        yield home


@contextmanager
def isolated_network():
    """Yield the path of a Chromium that runs in a network namespace of its own.

    Chromium aborts every request and socket (net::ERR_NETWORK_CHANGED) when an address of
    its host changes, as one does whenever a container or a podman network starts or stops on
    this machine (other scenarios run beside this one). In a namespace of its own the browser
    sees only its own loopback and slirp4netns's tap0, which never change; slirp4netns makes
    its connections from this machine's network stack, so they reach the site's address as
    before. IPv6 is off in the namespace (no link-local address appears after the start).

    Raises:
        OSError, subprocess.SubprocessError: the namespace or slirp4netns did not come up
        within NETNS_TIMEOUT seconds (needs root).
    """
    sysctls = "/proc/sys/net/ipv6/conf"
    holder = subprocess.Popen(  # noqa: S603 (fixed binaries, arguments from this script)
        [
            UNSHARE,
            "--net",
            "/bin/sh",
            "-c",
            f"echo 1 > {sysctls}/all/disable_ipv6 && echo 1 > {sysctls}/default/disable_ipv6"
            " && exec sleep 600",
        ]
    )
    slirp = None
    try:
        deadline = time.monotonic() + NETNS_TIMEOUT
        # unshare execs sh, which execs sleep once IPv6 is off: the same process throughout.
        while Path(f"/proc/{holder.pid}/comm").read_text().strip() != "sleep":
            if holder.poll() is not None or time.monotonic() > deadline:
                raise OSError(
                    f"the browser's network namespace did not come up ({holder.returncode})"
                )
            time.sleep(0.05)
        ready_read, ready_write = os.pipe()
        slirp = subprocess.Popen(  # noqa: S603 (fixed binary, arguments from this script)
            [
                SLIRP4NETNS,
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                f"--ready-fd={ready_write}",
                str(holder.pid),
                "tap0",
            ],
            pass_fds=(ready_write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(ready_write)
        with os.fdopen(ready_read, "rb") as ready:
            readable, _, _ = select.select([ready], [], [], max(0.0, deadline - time.monotonic()))
            if not readable or ready.read(1) != b"1":
                raise OSError("slirp4netns did not configure the browser's network namespace")
        with tempfile.TemporaryDirectory(prefix="browser-chat-bin-") as folder:
            wrapper = Path(folder) / "chromium"
            wrapper.write_text(
                f'#!/bin/sh\nexec {NSENTER} --net=/proc/{holder.pid}/ns/net {CHROMIUM} "$@"\n'
            )
            wrapper.chmod(0o700)
            yield str(wrapper)
    finally:
        for process in (slirp, holder):
            if process is not None:
                process.kill()
                process.wait()


def launch(playwright: Playwright, chromium: str, home: str, host: str, address: str) -> Browser:
    """Start headless ``chromium`` with HOME at ``home`` and ``host`` resolved to ``address``."""
    return playwright.chromium.launch(
        executable_path=chromium,
        env={**os.environ, "HOME": home},
        args=[f"--host-resolver-rules=MAP {host} {address}"],
    )


def check_untrusted(
    playwright: Playwright, chromium: str, url: str, host: str, address: str, run: Run
) -> None:
    """Check that Chromium refuses the site's certificate when its NSS database is empty.

    Raises:
        BrowserCheckError: the page loaded, or failed for another reason than an unknown CA.
    """
    with nss_home(None) as home:
        browser = launch(playwright, chromium, home, host, address)
        try:
            page = browser.new_page()
            try:
                page.goto(url + "/accounts/login/")
            except PlaywrightError as exc:
                if "ERR_CERT_AUTHORITY_INVALID" not in str(exc):
                    raise BrowserCheckError(f"without the CA: {exc}") from exc
            else:
                raise BrowserCheckError(
                    "Chromium loaded the page without the CA in its NSS database"
                )
        finally:
            browser.close()
    run.passed("without the CA in its NSS database Chromium refuses the certificate")


def sign_up(person: Person) -> None:
    """Fill in and send the sign-up form; the person lands on the index, signed in.

    Raises:
        BrowserCheckError: the index does not name the new user.
        playwright.sync_api.Error: a field, the button or the index did not come in time.
    """
    page = person.page
    page.goto("/accounts/signup/")
    # Django's labels, with its label suffix.
    page.get_by_label("Username:", exact=True).fill(person.name)
    page.get_by_label("Password:", exact=True).fill(person.password)
    page.get_by_label("Password confirmation:", exact=True).fill(person.password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("/")
    signed_in = page.locator(".site-header nav strong").text_content()
    if signed_in != person.name:
        raise BrowserCheckError(f"after sign-up the index shows {signed_in!r}, not {person.name!r}")


def wait_connected(person: Person) -> None:
    """Wait until the room page's script reports its WebSocket open."""
    person.page.locator("#connection-state[data-state='open']").wait_for()


def message_texts(page: Page) -> list[tuple[str, str]]:
    """The room page's messages as (author, text), in page order."""
    shown = page.eval_on_selector_all(
        "#messages li.message",
        "items => items.map(i => [i.querySelector('.author').textContent,"
        " i.querySelector('.text').textContent])",
    )
    return [tuple(item) for item in shown]


def send_and_see(sender: Person, receiver: Person, text: str, timeout_ms: float) -> float:
    """Send ``text`` from the sender's room page; return the seconds until the receiver shows it.

    Both pages must show it, as text, authored by the sender.

    Raises:
        playwright.sync_api.Error: a page did not show the message within ``timeout_ms``.
    """
    box = sender.page.get_by_label("Message")
    box.fill(text)
    sent = time.monotonic()
    box.press("Enter")
    # The text as the element's whole content (not a substring, not as markup).
    script = (
        "([author, text]) => [...document.querySelectorAll('#messages li.message')].some("
        "i => i.querySelector('.author').textContent === author"
        " && i.querySelector('.text').textContent === text)"
    )
    receiver.page.wait_for_function(script, arg=[sender.name, text], timeout=timeout_ms)
    seconds = time.monotonic() - sent
    sender.page.wait_for_function(script, arg=[sender.name, text], timeout=timeout_ms)
    return seconds


def check_inert(people: list[Person], markup: str) -> None:
    """Check that the markup message made no element and ran no script on any page.

    Raises:
        BrowserCheckError: an element of the markup is in a message, or its script ran.
    """
    for person in people:
        found = person.page.evaluate(
            "() => ({elements: document.querySelectorAll("
            "'#messages .text b, #messages .text script, #messages .text img').length,"
            " ran: window.__chatMarkupRan === undefined ? null : window.__chatMarkupRan})"
        )
        if found["elements"] or found["ran"] is not None:
            raise BrowserCheckError(f"{person.name}'s page rendered {markup!r} as markup: {found}")


def check_icon(page: Page) -> str:
    """Fetch the icon the page links, and ``/favicon.ico``, from the page; describe both.

    Raises:
        BrowserCheckError: the page links no icon, or either is not an image answered with 200.
    """
    found = page.evaluate(
        """async () => {
            const link = document.querySelector("link[rel='icon']");
            const get = async (url) => {
                const r = await fetch(url);
                return {url: r.url, status: r.status, type: r.headers.get("content-type")};
            };
            return {linked: link && await get(link.href), root: await get("/favicon.ico")};
        }"""
    )
    linked, root = found["linked"], found["root"]
    if not linked or any(
        answer["status"] != 200 or not (answer["type"] or "").startswith("image/")
        for answer in (linked, root)
    ):
        raise BrowserCheckError(f"the site icon: {found}")
    if root["url"] != linked["url"]:
        raise BrowserCheckError(
            f"/favicon.ico ends at {root['url']}, the page links {linked['url']}"
        )
    return f"{urllib.parse.urlsplit(linked['url']).path} ({linked['type']})"


def chat(url: str, address: str, cafile: Path, timeout: float, run: Run) -> None:
    """Run the whole browser test once, recording it in ``run``.

    Args:
        url: the site's public URL, ``https://<name>[:port]``.
        address: the address to reach ``<name>`` at (no DNS needed).
        cafile: PEM of the CA that issued the site's certificate chain.
        timeout: seconds any one browser wait may take (navigations get twice that).
        run: the record to fill; its screenshots go to ``run.artifacts`` (made here).

    Raises:
        BrowserCheckError, playwright.sync_api.Error, subprocess.CalledProcessError: the first
        check that failed (after screenshots of the pages as they were).
    """
    host = urllib.parse.urlsplit(url).hostname or ""
    run.artifacts.mkdir(parents=True)
    suffix = secrets.token_hex(4)
    room = f"browser-{suffix}"
    timeout_ms = timeout * 1000
    with sync_playwright() as playwright, isolated_network() as chromium:
        check_untrusted(playwright, chromium, url, host, address, run)
        with nss_home(cafile) as home:
            browser = launch(playwright, chromium, home, host, address)
            people: list[Person] = []
            try:
                for name in ("alice", "bob"):
                    context = browser.new_context(base_url=url, viewport=VIEWPORT)
                    context.set_default_timeout(timeout_ms)
                    context.set_default_navigation_timeout(2 * timeout_ms)
                    password = secrets.token_urlsafe(16)
                    person = Person(f"{name}-{suffix}", password, context, context.new_page())
                    person.watch()
                    people.append(person)
                alice, bob = people

                for person in people:
                    sign_up(person)
                run.passed(
                    f"{alice.name} and {bob.name} signed up through the form and are signed in"
                    f" (Chromium {browser.version}, {host}'s certificate verified through the CA)"
                )
                run.screenshot("signed-up", people)

                alice.page.get_by_label("Room name").fill(room)
                alice.page.get_by_role("button", name="Enter room").click()
                alice.page.wait_for_url(f"/chat/{room}/")
                bob.page.reload()
                bob.page.get_by_role("link", name=f"#{room}", exact=True).click()
                bob.page.wait_for_url(f"/chat/{room}/")
                for person in people:
                    wait_connected(person)
                run.passed(
                    f"{alice.name} entered #{room} by the index form, {bob.name} by its link"
                    " on the index; both WebSockets open"
                )
                run.screenshot("in-room", people)

                plain = f"hello from {alice.name}"
                seconds = send_and_see(alice, bob, plain, timeout_ms)
                run.passed(
                    f"{bob.name} saw {alice.name}'s message live after {seconds * 1000:.0f} ms"
                )
                markup = MARKUP.format(suffix=suffix)
                seconds = send_and_see(bob, alice, markup, timeout_ms)
                check_inert(people, markup)
                run.passed(
                    f"{alice.name} saw {bob.name}'s markup message live after"
                    f" {seconds * 1000:.0f} ms, as text; its script and handler did not run"
                )
                run.screenshot("messages", people)

                expected = [(alice.name, plain), (bob.name, markup)]
                for person in people:
                    # The history is in the page as served (escaped by the
                    # template), not only brought by the WebSocket's catch-up.
                    served = person.page.reload().text()
                    if html.escape(markup) not in served or markup in served:
                        raise BrowserCheckError(
                            f"the room page served to {person.name} lacks the escaped markup"
                        )
                    wait_connected(person)
                    shown = message_texts(person.page)
                    if shown != expected:
                        raise BrowserCheckError(
                            f"{person.name}'s reloaded room shows {shown}, expected {expected}"
                        )
                check_inert(people, markup)
                run.passed(
                    "after a reload both find the two messages in the history as served"
                    " (escaped), in order, shown as text"
                )
                run.screenshot("reloaded", people)

                icon = check_icon(alice.page)
                run.passed(f"the linked icon and /favicon.ico both load: {icon}")

                errors = [f"{person.name}: {error}" for person in people for error in person.errors]
                if errors:
                    raise BrowserCheckError(f"{len(errors)} browser error(s): {errors}")
                run.passed(
                    "no console error, page error, failed request or HTTP error in either browser"
                )
            except Exception:
                if people:
                    try:
                        run.screenshot("failed", people)
                    except PlaywrightError:
                        pass
                run.errors = [f"{p.name}: {error}" for p in people for error in p.errors]
                print(f"browser errors seen: {json.dumps(run.errors, indent=1)}", file=sys.stderr)
                raise
            finally:
                for path in run.shots:
                    print(f"screenshot: {path}", flush=True)
                browser.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: ``URL --address A --cafile PEM --artifacts DIR``; 0 when all passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="public URL, https://name[:port]")
    parser.add_argument("--address", required=True, help="address of the name (no DNS used)")
    parser.add_argument("--cafile", required=True, type=Path, help="PEM of the site's CA")
    parser.add_argument("--artifacts", required=True, type=Path, help="folder for screenshots")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per browser wait")
    args = parser.parse_args(argv)
    shutil.rmtree(args.artifacts, ignore_errors=True)
    run = Run(args.artifacts)
    try:
        chat(args.url, args.address, args.cafile, args.timeout, run)
    except (BrowserCheckError, PlaywrightError, subprocess.SubprocessError, OSError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"passed {len(run.done)} checks in {time.monotonic() - run.started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
