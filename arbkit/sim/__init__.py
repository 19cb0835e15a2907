"""The embedded exchange world: servers on loopback that speak the venues' real protocols.

The world is written independently of the clients: it may use `arbkit.core` (and the index
methodology for its reference BRTI) but never imports `arbkit.venues`, so a misreading in a
client parser cannot be mirrored here and hide itself.
"""
