"""Flood a site's password views with login POSTs from the host this runs on (stdlib only).

    login_flood.py HOST ADDRESS --seconds S --rate R

Sends R login POSTs a second for S seconds (bounded: at most S x R) over HTTPS to ADDRESS,
with the server name HOST (certificate not checked: this is the attacker), alternating
/accounts/login/ and /admin/login/, each with a fresh CSRF cookie and token from the form so
that the app would hash the password if the request got through. Prints one JSON object:
the count of each status. Always exits 0: the verifier asserts.
"""

import argparse
import http.client
import json
import re
import socket
import ssl
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``address`` with the server name ``host`` (SNI and Host), as a browser would."""

    def __init__(self, host: str, address: str, context: ssl.SSLContext) -> None:
        super().__init__(host, 443, timeout=10, context=context)
        self.address = address

    def connect(self) -> None:
        """Connect to the address and start TLS for the host name."""
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def attempt(host: str, address: str, path: str) -> str:
    """GET the form, POST a wrong password with its token; the POST's status (or error name)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        conn = PinnedHTTPSConnection(host, address, context)
        conn.request("GET", path, headers={"Host": host})
        page = conn.getresponse()
        body = page.read().decode(errors="replace")
        cookie = page.getheader("Set-Cookie", "").split(";", 1)[0]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        csrf = token.group(1) if token else ""
        form = f"csrfmiddlewaretoken={csrf}&username=admin&password=guess"
        conn.request(
            "POST",
            path,
            body=form,
            headers={
                "Host": host,
                "Cookie": cookie,
                "Referer": f"https://{host}{path}",
                "Origin": f"https://{host}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        answer = conn.getresponse()
        answer.read()
        conn.close()
        return str(answer.status)
    except OSError as exc:
        return type(exc).__name__


def main() -> None:
    """Send the flood and print the statuses."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("host")
    parser.add_argument("address")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    paths = ["/accounts/login/", "/admin/login/"]
    total = int(args.seconds * args.rate)
    start = time.monotonic()
    futures = []
    with ThreadPoolExecutor(max_workers=32) as pool:
        for n in range(total):
            delay = start + n / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(attempt, args.host, args.address, paths[n % 2]))
        statuses = Counter(f.result() for f in futures)
    seconds = round(time.monotonic() - start, 1)
    print(json.dumps({"sent": total, "seconds": seconds, "statuses": statuses}))


if __name__ == "__main__":
    main()
