"""Generated protobuf and gRPC code; ``make proto`` rewrites it. Do not edit."""
