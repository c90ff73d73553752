"""Network and file guards: where a source may point before any driver is involved."""

import ipaddress
import os
import socket
from pathlib import PurePath

from .base import ConnectorError, NetworkPolicy

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fec0::/10",
    )
)
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


def _parse_allow(policy: NetworkPolicy):
    names, networks = set(), []
    for entry in policy.allow:
        entry = entry.strip()
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def _category(ip, block_private: bool) -> str:
    if ip.is_unspecified or (ip.version == 4 and ip in THIS_NETWORK):
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if block_private and any(ip in net for net in PRIVATE_NETWORKS):
        return "private"
    return ""


def resolve_host(host: str, port: int, policy: NetworkPolicy) -> str:
    """Resolve `host` once, refuse addresses the policy does not allow, return the one to use."""
    name = (host or "").strip().strip("[]")
    if not name:
        raise ConnectorError("other", "no host given")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise ConnectorError("dns", f"cannot resolve host '{name}'") from None
    if not infos:
        raise ConnectorError("dns", f"cannot resolve host '{name}'")
    names, networks = _parse_allow(policy)
    name_allowed = name.lower().rstrip(".") in names
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if ip in addresses:
            continue
        addresses.append(ip)
        label = _category(ip, policy.block_private)
        if label and not name_allowed and not any(ip in net for net in networks):
            raise ConnectorError(
                "blocked",
                f"refusing to connect to '{name}': address {ip} is {label} and not allowed "
                "(add it to the network allowlist to permit it)",
            )
    return str(addresses[0])


def check_sqlite_path(path: str, policy: NetworkPolicy) -> str:
    """Return the real path of an SQLite file that lies inside the policy's SQLite directory."""
    if not policy.sqlite_dir:
        raise ConnectorError("blocked", "SQLite sources are disabled (no SQLite directory set)")
    if not path:
        raise ConnectorError("not_found", "no SQLite file given")
    if path.lower().startswith("file:") or "\x00" in path or path == ":memory:":
        raise ConnectorError("blocked", f"'{path}' is not a plain file name")
    if ".." in PurePath(path).parts:
        raise ConnectorError("blocked", f"'{path}' may not contain '..'")
    base = os.path.realpath(policy.sqlite_dir)
    real = os.path.realpath(os.path.join(base, path))
    if os.path.commonpath([base, real]) != base:
        raise ConnectorError("blocked", f"'{path}' is outside the SQLite directory")
    if not os.path.isfile(real):
        raise ConnectorError("not_found", f"SQLite file '{path}' does not exist")
    return real
