"""What chunks tell the layers above them."""

from django.dispatch import Signal

chunks_received = Signal()
"""New chunks were recorded, inside the transaction that records them: `session`, `chunk_ids`."""
