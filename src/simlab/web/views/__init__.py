"""The web UI's views: they translate requests into selector and service calls."""
