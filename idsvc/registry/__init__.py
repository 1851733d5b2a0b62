"""The registry: sites, buildings, units, doors and door groups, people, vehicles, devices, grants."""
