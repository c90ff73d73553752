"""Network and file guards: where a source may point before any driver is involved.

`refusal(address, policy)` is the one rule for every outbound connection (sources now;
webhooks, storage targets and integrations call it too): a pure function of an IP address
and a policy. `resolve_host` resolves a name once and applies it to every address found.
"""

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
# Instance metadata and credential services. Never allowed, whatever the allowlist says: an
# allowlisted name whose DNS answer moves here would hand out the cloud's credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, Google, Azure, Oracle, DigitalOcean, OpenStack, IBM, Hetzner
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "169.254.0.23",  # Tencent Cloud
        "169.254.42.42",  # Scaleway
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer
        "192.0.0.192",  # Oracle Cloud Infrastructure (classic)
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "fd20:ce::254",  # Google Cloud metadata over IPv6
    )
)
# IPv6 forms that carry an IPv4 address (RFC 4291, 2765, 3056, 4380, 6052, 8215).
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
TEREDO = ipaddress.ip_network("2001::/32")
NOT_ALLOWED = "not allowed (add it to the network allowlist to permit it)"


def embedded_ipv4(ip) -> list[tuple[str, ipaddress.IPv4Address]]:
    """(form, IPv4 address) for each IPv4 address an IPv6 address carries; [] for others."""
    if ip.version == 4:
        return []
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in IPV4_MAPPED:
        return [("IPv4-mapped", low)]
    if ip in IPV4_TRANSLATED:
        return [("SIIT", low)]
    if ip in IPV4_COMPATIBLE:
        return [("IPv4-compatible", low)]
    if ip in SIX_TO_FOUR:
        return [("6to4", ip.sixtofour)]
    if ip in NAT64:
        return [("NAT64", low)]
    if ip in NAT64_LOCAL:
        # The operator picks the prefix length, so the IPv4 address may sit at any of these
        # places: each reading is judged, except those in 0.0.0.0/8, where no packet goes.
        readings = (_rfc6052(int(ip), length) for length in (96, 64, 56, 48))
        return [("NAT64", ipv4) for ipv4 in readings if ipv4 not in THIS_NETWORK]
    if ip in TEREDO:
        server, client = ip.teredo  # the client address comes back un-XOR-ed
        return [("Teredo", client), ("Teredo", server)]
    return []


def _rfc6052(value: int, prefix: int) -> ipaddress.IPv4Address:
    """The IPv4 address after a prefix of `prefix` bits; bits 64-71 are never part of it."""
    packed = (value >> 64 << 56) | (value & (1 << 56) - 1)  # 120 bits: bits 64-71 dropped
    start = prefix if prefix <= 64 else prefix - 8
    return ipaddress.IPv4Address(packed >> (120 - start - 32) & 0xFFFFFFFF)


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


def _parse_allow(policy: NetworkPolicy):
    names, networks = set(), []
    for entry in policy.allow:
        entry = entry.strip()
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def _why(ip, policy: NetworkPolicy, networks, host_allowed: bool) -> str:
    inner = embedded_ipv4(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address and never allowed"
    for form, ipv4 in inner:
        if ipv4 in METADATA_ADDRESSES:
            return f"the {form} form of the cloud metadata address {ipv4} and never allowed"
    if host_allowed or any(ip in net for net in networks):
        return ""
    if not inner or ip.is_unspecified or ip.is_loopback:
        label = _category(ip, policy.block_private)
        return f"{label} and {NOT_ALLOWED}" if label else ""
    # An address that carries an IPv4 one goes where that one goes: judge that one instead.
    for form, ipv4 in inner:
        if why := _why(ipv4, policy, networks, False):
            return f"the {form} form of {ipv4}, which is {why}"
    return ""


def refusal(address, policy: NetworkPolicy, *, host_allowed: bool = False) -> str:
    """Why `policy` refuses a connection to `address` (an IP address), or "" when it allows
    it. Loopback, link-local, multicast, reserved and unspecified addresses (and private ones
    when the policy blocks them) are refused unless allowlisted, by address or, with
    `host_allowed`, by host name; cloud metadata addresses always. An IPv6 address that
    carries an IPv4 one (mapped, compatible, SIIT, 6to4, NAT64, Teredo) is judged by it."""
    ip = ipaddress.ip_address(address)
    why = _why(ip, policy, _parse_allow(policy)[1], host_allowed)
    return f"address {ip} is {why}" if why else ""


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
    names, _ = _parse_allow(policy)
    host_allowed = name.lower().rstrip(".") in names
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped  # connect over IPv4 to the address that was checked
        if ip in addresses:
            continue
        addresses.append(ip)
        if why := refusal(ip, policy, host_allowed=host_allowed):
            raise ConnectorError("blocked", f"refusing to connect to '{name}': {why}")
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
