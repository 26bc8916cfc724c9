"""Which host names the dashboard answers to: its guard against DNS rebinding.

A page on ``evil.example`` whose name is then pointed at 127.0.0.1 (DNS rebinding) reaches a
dashboard on loopback as a page of its own origin: the Origin check passes (the Origin is
``evil.example``, and so is ``Host``), and the browser would send whatever it holds for
that name. The one thing such a request cannot choose is ``Host``: it is the attacker's name.
So every request must name a host the dashboard serves:

* the address it binds (``web.host``);
* bound to loopback: also ``localhost``, ``127.0.0.1`` and ``::1``;
* bound to every address (``0.0.0.0`` or ``::``): any IP address (an address cannot be
  rebound: a page's origin is then the address itself), ``localhost`` and this computer's
  name;
* and the names of ``web.allowed_hosts`` (the name a reverse proxy passes on).

The port is not compared: a browser connects to the port the dashboard listens on whatever
name it used. A request with no ``Host`` at all (HTTP/1.0 from a script) is not a browser's
and is answered.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final

from preform_pipeline.settings.web import WebSettings
from preform_pipeline.wording import quoted

__all__ = ["ServedHosts", "host_name", "served_hosts"]

_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_EVERY_ADDRESS: Final = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class ServedHosts:
    """The names a dashboard answers to, and whether any IP address is one of them."""

    names: frozenset[str]
    any_address: bool = False

    def serves(self, host: str) -> bool:
        """True when the ``Host`` header ``host`` names this dashboard."""
        name = host_name(host)
        return name in self.names or (self.any_address and _is_address(name))

    def refusal(self, host: str) -> str:
        """What to tell the sender of ``host``: which names are served, and what helps."""
        served = ", ".join(sorted(self.names))
        if self.any_address:
            served = f"any IP address, {served}"
        return (f"refused: this dashboard does not answer to the host {quoted(host)} (it answers "
                f"to {served}); if a reverse proxy or a DNS name of this computer reaches it "
                "by that name, add the name to web.allowed_hosts in the settings")


def host_name(host: str) -> str:
    """The name in a ``Host`` header: without its port or an IPv6 address's brackets,
    lower case, without a final dot (``Example.org.:80`` is ``example.org``)."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        left, sep, port = host.rpartition(":")
        # "::1" unbracketed has colons but no port; a port is digits after the last colon
        # of a name holding only that one colon.
        name = left if sep and port.isdigit() and ":" not in left else host
    return name.rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def served_hosts(web: WebSettings, computer: str | None = None) -> ServedHosts:
    """The names a dashboard bound as ``web`` says answers to (module docstring);
    ``computer``: this computer's name (default: the system's)."""
    bound = host_name(web.host)
    names = {bound, *(host_name(n) for n in web.allowed_hosts)}
    if _is_loopback(bound):
        names |= _LOOPBACK_NAMES
    every = bound in _EVERY_ADDRESS
    if every:
        own = host_name(computer if computer is not None else socket.gethostname())
        names |= {"localhost", own, own.partition(".")[0]}
    return ServedHosts(frozenset(names - {""}), any_address=every)
