"""Several masters on one PostgreSQL database: how they share the work.

``shared`` holds the heartbeats, ping leases, takeover and fleet-wide slots;
``slave_feed`` follows the shared slave table from beat to beat.
"""
