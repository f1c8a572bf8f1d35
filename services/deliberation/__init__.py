"""The shared model of a deliberation: a council's state and the pure fold of its log.

Every part folds the same events the same way: the orchestrator to decide, the gateway to
answer reads, the client to draw the live display. Pure: it imports only ``council.schemas``.
"""
