"""What an API key may reach: the models it may use and the client addresses it may come from.

    key.allowed_models    = ["gpt-4o-mini"]                 # empty: every model
    key.allowed_networks  = ["203.0.113.0/24", "2001:db8::/32"]  # empty: any address

The address is checked where the key is authenticated, the model where a turn resolves it;
both refuse with 403 and a code of their own, so a script's author can tell which rule hit.
The lists are read from the key row itself, which the per-process key cache drops in every
process when the row is saved: a changed restriction holds from the next request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from rest_framework import exceptions

from accounts.models import ApiKey

MAX_ENTRIES = 100


class KeyModelNotAllowed(exceptions.PermissionDenied):
    default_code = "key_model_not_allowed"
    default_detail = "This API key may not use this model."


class KeyAddressNotAllowed(exceptions.PermissionDenied):
    default_code = "key_address_not_allowed"
    default_detail = "This API key may not be used from this address."


def models_clean(values: Any) -> list[str]:
    """Model names as stored: stripped, unique, in the order given. ValueError names the fault."""
    if not isinstance(values, list | tuple):
        raise ValueError("Send a list of model names.")
    if len(values) > MAX_ENTRIES:
        raise ValueError(f"At most {MAX_ENTRIES} models.")
    names: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > 100:
            raise ValueError(f"{value!r} is not a model name (1 to 100 characters).")
        if value.strip() not in names:
            names.append(value.strip())
    return names


def networks_clean(values: Any) -> list[str]:
    """Address ranges as stored, in CIDR form (`203.0.113.7` becomes `203.0.113.7/32`).

    A range with host bits set (`10.0.0.1/8`) is refused rather than widened: it is more often
    a typing slip than a wish to admit the whole network.
    """
    if not isinstance(values, list | tuple):
        raise ValueError("Send a list of address ranges in CIDR form, such as 203.0.113.0/24.")
    if len(values) > MAX_ENTRIES:
        raise ValueError(f"At most {MAX_ENTRIES} address ranges.")
    networks: list[str] = []
    for value in values:
        try:
            network = str(ipaddress.ip_network(str(value).strip(), strict=True))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an address range in CIDR form, such as 203.0.113.0/24 or 2001:db8::/32."
            ) from None
        if network not in networks:
            networks.append(network)
    return networks


def _address(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    # An IPv4 client reaching a dual-stack socket arrives as ::ffff:a.b.c.d.
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def key_address_check(*, key: ApiKey, address: str | None) -> None:
    """KeyAddressNotAllowed unless the key has no address ranges or `address` is in one.

    An address that cannot be read is outside every range: a restricted key fails closed.
    """
    if not key.allowed_networks:
        return
    client = _address(address)
    if client is not None and any(
        client in ipaddress.ip_network(network) for network in key.allowed_networks
    ):
        return
    raise KeyAddressNotAllowed(
        f"This API key may not be used from the address {address or 'unknown'}: "
        "its owner limited it to certain address ranges."
    )


def key_model_allowed(key: ApiKey | None, name: str) -> bool:
    return key is None or not key.allowed_models or name in key.allowed_models


def key_model_check(*, key: ApiKey | None, name: str) -> None:
    """KeyModelNotAllowed unless the caller is no key, or the key may use the model `name`."""
    if not key_model_allowed(key, name):
        raise KeyModelNotAllowed(
            f"This API key may not use the model {name!r}: its owner limited it to "
            f"{', '.join(repr(allowed) for allowed in (key.allowed_models if key else []))}."
        )


def key_models_visible(key: ApiKey | None, names: Iterable[str]) -> list[str]:
    """The names among `names` this key may use, in their order."""
    return [name for name in names if key_model_allowed(key, name)]
