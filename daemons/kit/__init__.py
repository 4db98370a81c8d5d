"""What every daemon shares: metrics, the HTTP server stack, problem+json, health checks, logging."""
