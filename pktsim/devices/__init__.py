"""The devices a node is made of, sans-IO: each ``receive(now, port, frame)`` returns a
``Reaction`` (frames to send, steps that explain them).

Public for device-level property tests (``notebooks/05-property-testing.ipynb``): ``Bridge``
(the learning bridge ``cbr0``), ``Frame`` (bytes plus the packet id that travels beside them)
and ``Reaction``.  Everything else here is reached through ``pktsim.Cluster``.
"""

from pktsim.core.frame import Frame, Reaction
from pktsim.devices.bridge import Bridge

__all__ = ["Bridge", "Frame", "Reaction"]
