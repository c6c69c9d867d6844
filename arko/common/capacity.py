"""What a slave and its master agree on about refusing work for lack of room."""

from __future__ import annotations

# Trailing metadata of a call a slave refused before running it. With it, a
# RESOURCE_EXHAUSTED answer means "never started": the master may send the job
# elsewhere; without it, RESOURCE_EXHAUSTED is the job's own failure.
REFUSED_HEADER = "arko-refused"
REFUSED_CAPACITY = "capacity"
