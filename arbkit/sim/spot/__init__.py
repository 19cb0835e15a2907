"""Spot venues of the embedded world: true books around the price path, served with each
venue's real protocol, and the world's reference BRTI computed from those books.

Never imports `arbkit.venues`: the encoders here are written from the protocol references
independently of the client parsers, so a misreading on one side cannot hide on the other.
"""

from arbkit.sim.spot.book import Change, TopView, VenueBook, VenueParams
from arbkit.sim.spot.server import Conn, VenueServer
from arbkit.sim.spot.sim import DEFAULT_PARAMS, SERVERS, SpotSim

__all__ = [
    "DEFAULT_PARAMS",
    "SERVERS",
    "Change",
    "Conn",
    "SpotSim",
    "TopView",
    "VenueBook",
    "VenueParams",
    "VenueServer",
]
