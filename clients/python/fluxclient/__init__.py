"""fluxclient: an asyncio client for the Flux gateway protocol (docs/protocol.md).

Standard library only. See fluxclient.client for delivery guarantees and
fluxclient.errors for the exception tree; fluxclient.codec is the framing.
"""

from . import codec
from .client import Client, connect
from .errors import *  # noqa: F401,F403 - the exception types are part of the API

__version__ = "0.1.0"
