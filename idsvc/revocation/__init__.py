"""Revocation that reaches every door: admin verbs, the instant deny set, notices between nodes."""
