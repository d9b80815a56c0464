"""The HTTP edge of the segments API: app factory, settings, auth, CLI."""
