"""The wire format between Reverie's processes: a dict of numpy arrays and strings as ``.npz``
bytes, read back with ``allow_pickle=False``, so nothing on the wire can run code."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


class WireError(ValueError):
    """A message that is not a valid Reverie message."""


def encode(message: dict[str, Any]) -> bytes:
    """``{name: array | number | str}`` -> bytes. Object arrays are refused."""
    arrays = {}
    for k, v in message.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise WireError(f"field {k!r} is not numeric or text ({type(v).__name__}); it cannot be sent")
        arrays[k] = a
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def decode(data: bytes) -> dict[str, Any]:
    """bytes -> ``{name: array}``; 0-d text and numbers come back as Python ``str``/``float``/``int``."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            out: dict[str, Any] = {}
            for k in z.files:
                a = z[k]
                out[k] = a.item() if a.ndim == 0 else a
            return out
    except (ValueError, OSError, EOFError) as e:
        raise WireError(f"not a Reverie message ({e})") from None
