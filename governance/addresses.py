"""The client's address, as the lockout, the throttles and the access log all count it.

X-Forwarded-For is believed only from a proxy in TRUSTED_PROXIES, and only as far as it is
written by trusted proxies: walking it from the right, the first address that is not a
trusted proxy is the client. Everything left of that was written by the client itself.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(cidrs):
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _ip(text):
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def _trusted(ip, networks):
    return any(ip.version == net.version and ip in net for net in networks)


def client_address(request):
    """The client's IP address as text, or None when the request carries none."""
    meta = getattr(request, "META", None) or {}
    remote = _ip(meta.get("REMOTE_ADDR") or "")
    if remote is None:
        return None
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    address = remote
    if _trusted(remote, networks):
        for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            ip = _ip(hop)
            if ip is None:
                break  # a broken chain: keep the last address a trusted proxy vouched for
            address = ip
            if not _trusted(ip, networks):
                break
    return str(address)
