"""HTTP blueprints: web (the page), api (JSON), ops (health and version)."""
