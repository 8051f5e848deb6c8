"""The Hub client layer: pinned references, one-commit pushes, typed card metadata.

Stages import this package; it imports no stage (only huggingface_hub and lmolt_hub.errors).
"""

from lmolt_hub.hub.ref import HubRef, RefError, is_local, is_tiny, pin, pinned_revision

__all__ = ["HubRef", "RefError", "is_local", "is_tiny", "pin", "pinned_revision"]
