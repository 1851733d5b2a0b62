"""The audit trail: an append-only, hash-chained log of every change and every decision."""
