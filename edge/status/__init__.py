"""The status page: an HTTP server (server.py) and the one HTML file it serves (page.html)."""
