"""The runtime: activations, per-job bookkeeping and the execution context.

Internal: users never import it.
"""
