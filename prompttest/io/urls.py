"""Whether a URL names this machine: what `--safe` lets a suite call, and where a token may
travel over plain http."""

from __future__ import annotations

import ipaddress
import urllib.parse


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (a host name that merely resolves to one is not
    trusted to keep doing so)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(urllib.parse.urlsplit(url).hostname or "")
