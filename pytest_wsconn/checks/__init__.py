"""The built-in check battery: run it against any WebSocket service without writing code.

    pytest -p wsconn --pyargs pytest_wsconn.checks --wsconn-url ws://host:port/ws --wsconn-token …

A check that needs something you did not give (a token, say) is skipped with the reason.
"""
