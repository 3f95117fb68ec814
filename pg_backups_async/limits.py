"""Every limit and default of the API and of this library, in one place.

The service's own limits come from its reference; the library's bounds are chosen so
that a real user never meets them, while a broken or hostile server cannot make a call
run or grow without end.
"""

from __future__ import annotations

# The service's limits
MAX_PAGE_SIZE = 1000
"""The most items a page may hold, and the largest `pageSize` the API takes."""
SERVER_DEFAULT_PAGE_SIZE = 100
"""The page size the service uses when a request names none."""
MAX_PAGE_TOKEN_LENGTH = 100
MAX_ID_LENGTH = 50
"""Cluster, folder and cloud ids."""
MAX_BACKUP_ID_LENGTH = 256
"""No limit is declared; backup ids are `<clusterId>:<name>`."""
MAX_FILTER_LENGTH = 1000

# The library's bounds and defaults
MAX_EMPTY_PAGES = 100
"""Empty pages in a row, each with a new token, after which a listing is cut off."""
MAX_RESUME_SKIP = MAX_PAGE_SIZE - 1
"""A resume point skips fewer items than a page holds."""
TOKEN_ANSWER_CAP = 16 * 1024
"""Bytes: a token exchange's answer is well under 2 KiB."""
DEFAULT_CONCURRENCY = 16
"""Listings at once in a fan-out or an inventory."""
DEFAULT_CONNECTION_LIMIT = 100
DEFAULT_TIMEOUT = 30.0
"""Seconds for one attempt, as a whole."""
MAX_CONNECT_TIMEOUT = 10.0
"""Seconds to connect, at most, within an attempt."""

# Bounds a broken or hostile server meets, never a real user (issue 22); each one can be
# set where it applies. The client's:
DEFAULT_MAX_PAGES = 10_000
"""Pages of one listing after which it is cut off (10 million items at 1000 a page; a
real cluster holds thousands of backups)."""
STREAM_PAGE_SIZE = MAX_PAGE_SIZE
"""The page size streams, fan-outs and inventories ask for when none is given: the
fewest requests, and the least CPU per item (single-page calls keep the service's 100)."""
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""The default cap on one answer's body, after decompression: a page of 1000 backups
is under 1 MB, so eight times that; a fan-out holds at most `concurrency` answers."""

# The command line's and the exporter's:
MAX_SERVER_TEXT = 2000
"""Characters of a server's message kept in an error, a log line or /healthz."""

# Careless input
MAX_KEY_FILE_BYTES = 64 * 1024
"""A key file the console saves is about 2.4 KB; a larger file is no key file."""

# The exporter's
DEFAULT_LISTEN = "127.0.0.1:10183"
"""Outside 9100-9999, the range Prometheus allocates to exporters, which is full."""
DEFAULT_INTERVAL = 300.0
"""Seconds between collections."""
MIN_INTERVAL = 1.0
"""Shorter intervals would hammer the API."""
DEFAULT_MAX_CONNECTIONS = 256
"""Connections the server holds at once; a Prometheus pair and a browser need a few."""
RENDER_IN_THREAD_FROM = 2000
"""Clusters from which a scrape is rendered in a worker thread (about 0.13 ms each):
fewer are rendered on the event loop, where they take under 0.3 s."""
DEFAULT_HEADER_TIMEOUT = 30.0
"""Seconds a connection has to send a request's headers, from its opening or the end of
its last answer; a scraper needs milliseconds."""

# The command line's
MAX_DURATION_DAYS = 36500
"""The longest duration an option takes: 100 years (`36500d`)."""
MAX_DEMO_CLUSTERS = 10_000
"""The most clusters `pg-backups demo --clusters` seeds."""
