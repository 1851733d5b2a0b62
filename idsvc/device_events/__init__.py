"""Events that bridges and devices journal at the door and upload later (at least once); stored exactly once."""
