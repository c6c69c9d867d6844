"""arko: an SDK for API-driven CI/CD pipelines built on gRPC."""
