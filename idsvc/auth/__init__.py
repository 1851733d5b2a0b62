"""Who is calling: API keys for people and devices, roles and their scopes."""
