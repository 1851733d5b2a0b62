"""Cross-cutting pieces every domain uses: database, errors, key-value store, encryption, time."""
