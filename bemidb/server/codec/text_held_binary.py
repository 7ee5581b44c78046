"""Binary wire forms of types the syncer stores as their Postgres text (inet/cidr, money, bit/varbit), so a
binary-format client gets the type Postgres describes (869, 650, 790, 1560, 1562) with Postgres's bytes."""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server.codec.arrow_bytes import fixed_width, np_values

TYPES = frozenset(("inet", "cidr", "money", "bit", "varbit"))


def to_binary(text: pa.Array, name: str) -> pa.Array:
    if name == "money":
        return _money(text)
    encode = _bits if name in ("bit", "varbit") else (lambda v: _inet(v, name == "cidr"))
    return pa.array([None if v is None else encode(v) for v in text.to_pylist()], pa.binary())


def _inet(value: str, is_cidr: bool) -> bytes:
    """family (2 = AF_INET, 3 = Postgres's AF_INET6), prefix bits, is_cidr, address length, address."""
    network = ipaddress.ip_interface(value)
    address = network.ip.packed
    family = 2 if network.version == 4 else 3
    return struct.pack("BBBB", family, network.network.prefixlen, int(is_cidr), len(address)) + address


def _bits(value: str) -> bytes:
    """int32 bit count, then the bits, the last byte padded with zeros on the right."""
    count = len(value)
    number = int(value, 2) << ((-count) % 8) if count else 0
    return struct.pack(">i", count) + number.to_bytes((count + 7) // 8, "big")


def _money(text: pa.Array) -> pa.Array:
    """int64 cents of '$1,000.50' / '-$1.00' (the C/en_US lc_monetary form the syncer reads), vectorised."""
    digits = pc.replace_substring_regex(text, r"[$,\s]", "")
    negative = pc.match_substring_regex(digits, r"^\(|^-")
    plain = pc.replace_substring_regex(digits, r"[()\-]", "")
    # money's text has exactly the two fraction digits of that form: the digits without the point are cents
    whole = pc.binary_join_element_wise(plain, pc.if_else(pc.match_substring(plain, "."), "", ".00"), "")
    cents = pc.cast(pc.replace_substring(whole, ".", ""), pa.int64())
    signed = pc.if_else(negative, pc.negate(cents), cents)
    return fixed_width(np_values(signed, 0).astype(">i8").view(np.uint8).reshape(-1, 8), signed)
