"""Who sent a request: the client's address as the service trusts it."""

import ipaddress

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

_throttle = BaseThrottle()


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address as DRF's throttles read it: from X-Forwarded-For only behind
    LUCID_NUM_PROXIES trusted proxies, else REMOTE_ADDR; None if that is no IP address."""
    address = _throttle.get_ident(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
