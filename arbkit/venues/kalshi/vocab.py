"""The Kalshi WebSocket API v2 vocabularies: stream, channels, error codes, resync stages.

Channel names and error codes follow reference/kalshi-api.md §3 (compiled 2026-11-24).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

STREAM = "kalshi_ws"
"""The raw stream (and events ``source``) name of the Kalshi WebSocket feed."""


class Channel(StrEnum):
    """The channels the client subscribes (their wire names)."""

    BOOK = "orderbook_delta"
    TICKER = "ticker"
    TRADE = "trade"
    LIFECYCLE = "market_lifecycle_v2"
    CF_INDEX = "cfbenchmarks_value"


MARKET_CHANNELS = (Channel.BOOK, Channel.TICKER, Channel.TRADE)
"""Channels filtered by market ticker (the others are global)."""
DEFAULT_CHANNELS = tuple(Channel)


class ErrorCode(IntEnum):
    """Error codes of reference §3.4 (1–22 AsyncAPI 2026-03, 25 docs 2026, 23–28 third party)."""

    UNABLE_TO_PROCESS = 1
    PARAMS_REQUIRED = 2
    CHANNELS_REQUIRED = 3
    SIDS_REQUIRED = 4
    UNKNOWN_COMMAND = 5
    ALREADY_SUBSCRIBED = 6
    UNKNOWN_SID = 7
    UNKNOWN_CHANNEL = 8
    AUTH_REQUIRED = 9
    CHANNEL_ERROR = 10
    INVALID_PARAMETER = 11
    ONE_SID_REQUIRED = 12
    UNSUPPORTED_ACTION = 13
    MARKET_TICKER_REQUIRED = 14
    ACTION_REQUIRED = 15
    MARKET_NOT_FOUND = 16
    INTERNAL_ERROR = 17
    COMMAND_TIMEOUT = 18
    SHARD_FACTOR_POSITIVE = 19
    SHARD_FACTOR_REQUIRED = 20
    SHARD_KEY_RANGE = 21
    SHARD_FACTOR_MAX = 22
    MATCH_IDS_REQUIRED = 23
    INDEX_IDS_REQUIRED = 24
    BUFFER_OVERFLOW = 25
    MARKET_LIMIT = 26
    TOO_MANY_REQUESTS = 27
    UNDERLYING_REQUIRED = 28


ERROR_CODES: dict[int, str] = {
    ErrorCode.UNABLE_TO_PROCESS: "Unable to process message",
    ErrorCode.PARAMS_REQUIRED: "Params required",
    ErrorCode.CHANNELS_REQUIRED: "Channels required",
    ErrorCode.SIDS_REQUIRED: "Subscription IDs required",
    ErrorCode.UNKNOWN_COMMAND: "Unknown command",
    ErrorCode.ALREADY_SUBSCRIBED: "Already subscribed",
    ErrorCode.UNKNOWN_SID: "Unknown subscription ID",
    ErrorCode.UNKNOWN_CHANNEL: "Unknown channel name",
    ErrorCode.AUTH_REQUIRED: "Authentication required",
    ErrorCode.CHANNEL_ERROR: "Channel error",
    ErrorCode.INVALID_PARAMETER: "Invalid parameter",
    ErrorCode.ONE_SID_REQUIRED: "Exactly one subscription ID is required",
    ErrorCode.UNSUPPORTED_ACTION: "Unsupported action",
    ErrorCode.MARKET_TICKER_REQUIRED: "Market Ticker required",
    ErrorCode.ACTION_REQUIRED: "Action required",
    ErrorCode.MARKET_NOT_FOUND: "Market not found",
    ErrorCode.INTERNAL_ERROR: "Internal error",
    ErrorCode.COMMAND_TIMEOUT: "Command timeout",
    ErrorCode.SHARD_FACTOR_POSITIVE: "shard_factor must be > 0",
    ErrorCode.SHARD_FACTOR_REQUIRED: "shard_factor is required when shard_key is set",
    ErrorCode.SHARD_KEY_RANGE: "shard_key must be >= 0 and < shard_factor",
    ErrorCode.SHARD_FACTOR_MAX: "shard_factor must be <= 100",
    ErrorCode.MATCH_IDS_REQUIRED: "Match IDs required",
    ErrorCode.INDEX_IDS_REQUIRED: "Index IDs required",
    ErrorCode.BUFFER_OVERFLOW: "Subscription buffer overflow",
    ErrorCode.MARKET_LIMIT: "Subscription market limit exceeded",
    ErrorCode.TOO_MANY_REQUESTS: "Too many requests",
    ErrorCode.UNDERLYING_REQUIRED: "Underlying tickers required",
}
"""Each code's message as the reference gives it (used when a frame carries none)."""

RESUBSCRIBE_CODES = frozenset(
    {
        ErrorCode.UNKNOWN_SID,
        ErrorCode.CHANNEL_ERROR,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.BUFFER_OVERFLOW,
    }
)
"""The server lost or broke the subscription: subscribe afresh (fresh snapshots, new sid)."""
SID_LOST_CODES = frozenset({ErrorCode.UNKNOWN_SID, ErrorCode.BUFFER_OVERFLOW})
"""Of those, the ones after which the server no longer holds the sid (no unsubscribe first)."""
RETRY_CODES = frozenset({ErrorCode.COMMAND_TIMEOUT, ErrorCode.TOO_MANY_REQUESTS})
"""Transient refusal of a command: send it again later, backing off."""
UPDATE_FALLBACK_CODES = frozenset(
    {
        ErrorCode.PARAMS_REQUIRED,
        ErrorCode.INVALID_PARAMETER,
        ErrorCode.ONE_SID_REQUIRED,
        ErrorCode.UNSUPPORTED_ACTION,
        ErrorCode.ACTION_REQUIRED,
    }
)
"""An ``update_subscription`` this server cannot take: fall back to a full resubscribe."""
DISABLING_CODES = frozenset({ErrorCode.UNKNOWN_CHANNEL, ErrorCode.AUTH_REQUIRED})
"""A channel refused with these is not asked for again (8: for good; 9: until reconnect)."""
MARKET_DROP_CODES = frozenset({ErrorCode.MARKET_NOT_FOUND, ErrorCode.MARKET_LIMIT})
"""A subscribe refused for one of its markets: retried without the markets dropped."""


class ResyncStage(IntEnum):
    """Where a subscription stands on the resync ladder (each stage has a deadline)."""

    WAITING = 0
    """Waiting for first snapshots (or in sync)."""
    GET_SNAPSHOT = 1
    """``get_snapshot`` sent on the same sid."""
    RESUBSCRIBED = 2
    """Unsubscribed and subscribed afresh; next: reconnect."""


class LifecycleEvent(StrEnum):
    """``market_lifecycle_v2`` event types the client acts on."""

    CREATED = "created"
    ACTIVATED = "activated"
    DETERMINED = "determined"
    SETTLED = "settled"


FOLLOW_EVENTS = frozenset({LifecycleEvent.CREATED, LifecycleEvent.ACTIVATED})
"""A followed series' market is added on these."""
END_EVENTS = frozenset({LifecycleEvent.DETERMINED, LifecycleEvent.SETTLED})
"""A followed market is dropped on these."""


class FrameType(StrEnum):
    """The ``type`` of every server frame the client reads."""

    BOOK_DELTA = "orderbook_delta"
    BOOK_SNAPSHOT = "orderbook_snapshot"
    TICKER = "ticker"
    TRADE = "trade"
    MARKET_LIFECYCLE = "market_lifecycle_v2"
    EVENT_LIFECYCLE = "event_lifecycle"
    CF_INDEX = "cfbenchmarks_value"
    CF_INDEX_LIST = "cfbenchmarks_value_indexlist"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    OK = "ok"
    ERROR = "error"
