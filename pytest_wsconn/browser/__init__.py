"""The browser side: a real Chromium page's WebSockets, recorded and put behind the proxy.

``timeline`` is pure (events, sentences, checks); ``page`` drives Chromium through Playwright
and is imported only by the ``wsconn_browser`` fixture (``fixture``), so that Playwright is an
optional extra (``pip install 'pytest-wsconn[browser]'``).
"""
