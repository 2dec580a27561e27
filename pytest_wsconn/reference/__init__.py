"""The reference WebSocket server (``server``) and its signed tokens (``tokens``).

The behaviour pytest-wsconn recommends. Import from the submodules: importing ``tokens`` must
not start up the server's asyncio machinery.
"""
