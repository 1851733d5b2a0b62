"""The signed sync feed for bridges: snapshots and deltas per site, and their verification."""
