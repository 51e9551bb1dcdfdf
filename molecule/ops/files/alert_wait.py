"""Wait until alerts fire (or clear) in Prometheus and reach (or leave) Alertmanager.

Runs on the monitoring host (the only place both APIs answer, by the firewall), copied there by
``ansible.builtin.script``; standard library only. Prints one JSON object: for each alert name,
the seconds until Prometheus reported it firing (or no longer firing) and until Alertmanager
listed it as active (or no longer listed it), and the labels it fired with. A name given as
``NAME@EPOCH`` counts from that Unix time (when the drill broke or repaired it; the containers
share the control node's clock), a bare name from the start of this script.

Usage::

    python3 alert_wait.py --prometheus URL --alertmanager URL --timeout 90 fire NAME [NAME ...]
    python3 alert_wait.py --prometheus URL --alertmanager URL --timeout 90 clear NAME [NAME ...]

Exit status: 0 when every alert got there in time, 1 otherwise (the JSON says which did not).
"""

import argparse
import json
import sys
import time
import urllib.request


def get_json(url: str) -> object:
    """GET ``url`` and decode its JSON body (timeout 5 s).

    Raises:
        OSError, ValueError: the request failed or the body is not JSON.
    """
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (URL from our own argv)
        return json.loads(response.read())


def firing(prometheus: str) -> dict[str, dict[str, str]]:
    """Alert name -> labels of one firing instance, as Prometheus's /api/v1/alerts reports them."""
    alerts = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
    return {a["labels"]["alertname"]: a["labels"] for a in alerts if a["state"] == "firing"}


def active(alertmanager: str) -> set[str]:
    """Names of the alerts Alertmanager's /api/v2/alerts lists as active."""
    alerts = get_json(f"{alertmanager}/api/v2/alerts?active=true&silenced=false&inhibited=false")
    return {a["labels"]["alertname"] for a in alerts}


def main(argv: list[str] | None = None) -> int:
    """Poll both APIs every 0.5 s until each named alert is there (fire) or gone (clear)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--alertmanager", required=True)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds")
    parser.add_argument("mode", choices=["fire", "clear"])
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    started = time.time()
    since = {}
    for item in args.names:
        name, _, epoch = item.partition("@")
        since[name] = float(epoch) if epoch else started
    result = {name: {"prometheus_s": None, "alertmanager_s": None} for name in since}
    want = args.mode == "fire"
    while True:
        now = time.time()
        elapsed = now - started
        try:
            in_prometheus = firing(args.prometheus)
            in_alertmanager = active(args.alertmanager)
        except (OSError, ValueError, KeyError):
            in_prometheus, in_alertmanager = None, None
        if in_prometheus is not None:
            for name, seen in result.items():
                if seen["prometheus_s"] is None and (name in in_prometheus) == want:
                    seen["prometheus_s"] = round(now - since[name], 1)
                    seen["prometheus_at"] = time.strftime("%H:%M:%S", time.gmtime(now))
                    if want:
                        seen["labels"] = in_prometheus[name]
                if seen["alertmanager_s"] is None and (name in in_alertmanager) == want:
                    seen["alertmanager_s"] = round(now - since[name], 1)
        done = all(
            v["prometheus_s"] is not None and v["alertmanager_s"] is not None
            for v in result.values()
        )
        if done or elapsed > args.timeout:
            print(json.dumps({"mode": args.mode, "alerts": result, "all": done}))
            return 0 if done else 1
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
