"""The master's adapters: gRPC servicers and the HTTP API over the same cores.

An adapter turns a request into a call on a core and the answer back into its
protocol; no adapter holds job logic, and no core imports an adapter.
"""
