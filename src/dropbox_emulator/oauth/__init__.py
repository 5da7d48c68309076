"""OAuth 2 as Dropbox does it: the registered apps, the tokens and codes they get, and the
authorize and token endpoints."""
