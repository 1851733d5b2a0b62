"""The personal-data lifecycle across domains: master-key rotation, retention, export and erasure."""
