"""The audit trail's HTTP and CLI views: query, export, chain head and verification.

Kept apart from ``idsvc.audit`` (the chain itself: models, append, verify, decision log) because
the views need the caller's scope from auth and registry, while auth and registry write into the
chain: the chain sits just above core, its views beside the other domains.
"""
