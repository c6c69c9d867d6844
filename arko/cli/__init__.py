"""The ``arko`` command: a gRPC client of a master's arko.v1.Jobs and arko.v1.Admin."""
