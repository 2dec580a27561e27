"""The run history: every session's tests, faults and handshakes, and their trends.

records   what a run and a test in it are (pure)
trends    success rate, flaky tests, handshake regressions, new failures (pure)
store     SQLite on disk, schema migrations, safe under xdist workers
recorder  what the plugin appends at the end of a session
"""
