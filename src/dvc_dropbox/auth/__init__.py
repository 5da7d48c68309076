"""Credentials: where they come from (`resolve`), the files that keep them (`credentials`), the
first-use flow (`oauth_flow`, `terminal`), the SDK client that renews them (`client`), and what
is said about them (`messages`). Importing the package imports nothing."""
