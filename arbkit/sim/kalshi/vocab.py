"""The Kalshi WebSocket v2 vocabulary the world speaks: commands, channels, actions, error codes.

Per reference/kalshi-api.md §3.2–3.4 (error table as documented in 2026; codes 6, 9, 10, 23
and 28 are never sent by the world: it has no duplicate detection, no private data, no match
or underlying channels).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Command(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    UPDATE_SUBSCRIPTION = "update_subscription"
    LIST_SUBSCRIPTIONS = "list_subscriptions"


class Channel(StrEnum):
    ORDERBOOK_DELTA = "orderbook_delta"
    TICKER = "ticker"
    TRADE = "trade"
    MARKET_LIFECYCLE_V2 = "market_lifecycle_v2"
    CFBENCHMARKS_VALUE = "cfbenchmarks_value"
    # private: accepted (the session is authenticated) but silent, the world has no accounts
    FILL = "fill"
    USER_ORDERS = "user_orders"
    MARKET_POSITIONS = "market_positions"
    ORDER_GROUP_UPDATES = "order_group_updates"
    COMMUNICATIONS = "communications"


SEQUENCED = frozenset({Channel.ORDERBOOK_DELTA, Channel.CFBENCHMARKS_VALUE})
"""Channels whose frames (and acks) carry a per-sid ``seq``."""
MARKET_FILTERED = frozenset({Channel.ORDERBOOK_DELTA, Channel.TICKER, Channel.TRADE})
"""Channels a subscription may restrict to named markets."""


class Action(StrEnum):
    """``update_subscription`` actions (market channels, then ``cfbenchmarks_value``)."""

    ADD_MARKETS = "add_markets"
    DELETE_MARKETS = "delete_markets"
    GET_SNAPSHOT = "get_snapshot"
    INDEXLIST = "indexlist"
    SUBSCRIBE_INDICES = "subscribe_indices"
    UNSUBSCRIBE_INDICES = "unsubscribe_indices"


MARKET_ACTIONS = frozenset({Action.ADD_MARKETS, Action.DELETE_MARKETS, Action.GET_SNAPSHOT})
INDEX_ACTIONS = frozenset({Action.SUBSCRIBE_INDICES, Action.UNSUBSCRIBE_INDICES})
INDEX_IDS = ("BRTI",)
"""The indices ``cfbenchmarks_value`` serves (``"all"`` names every one)."""


class ErrorCode(IntEnum):
    """Error frame codes (reference §3.4); `message` gives Kalshi's text."""

    UNPROCESSABLE = 1
    PARAMS_REQUIRED = 2
    CHANNELS_REQUIRED = 3
    SIDS_REQUIRED = 4
    UNKNOWN_COMMAND = 5
    UNKNOWN_SID = 7
    UNKNOWN_CHANNEL = 8
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
    INDEX_IDS_REQUIRED = 24
    BUFFER_OVERFLOW = 25
    MARKET_LIMIT = 26
    TOO_MANY_REQUESTS = 27

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNPROCESSABLE: "Unable to process message",
    ErrorCode.PARAMS_REQUIRED: "Params required",
    ErrorCode.CHANNELS_REQUIRED: "Channels required",
    ErrorCode.SIDS_REQUIRED: "Subscription IDs required",
    ErrorCode.UNKNOWN_COMMAND: "Unknown command",
    ErrorCode.UNKNOWN_SID: "Unknown subscription ID",
    ErrorCode.UNKNOWN_CHANNEL: "Unknown channel name",
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
    ErrorCode.INDEX_IDS_REQUIRED: "Index IDs required",
    ErrorCode.BUFFER_OVERFLOW: "Subscription buffer overflow",
    ErrorCode.MARKET_LIMIT: "Subscription market limit exceeded",
    ErrorCode.TOO_MANY_REQUESTS: "Too many requests",
}

REFUSALS = (ErrorCode.INTERNAL_ERROR, ErrorCode.COMMAND_TIMEOUT, ErrorCode.TOO_MANY_REQUESTS)
"""Transient refusals the ``refuse`` fault answers a subscribe or update_subscription with
(reference §3.4). An unsubscribe is never refused: a refused one leaves the server streaming a
sid the client already dropped, where an injected gap would go unseen (the client's retry of
a refused unsubscribe is unit-tested instead)."""
