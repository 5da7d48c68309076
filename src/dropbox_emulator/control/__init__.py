"""Test-time control: the JSON control API, the realism knobs (write locks, rate limits, stats)
and injected faults."""
