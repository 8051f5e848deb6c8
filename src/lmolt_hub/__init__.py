"""lmolt-hub: a Hub-centric model zoo for machine language-molecule translation."""

from lmolt_hub.hub.errors import disable_xet_for_local_hub
from lmolt_hub.noise import quiet_third_party_noise

__version__ = "0.1.0"

# Before any huggingface_hub import of ours: a local Hub (HF_ENDPOINT) cannot take Xet uploads.
disable_xet_for_local_hub()
# Before bitsandbytes/transformers load: drop their warnings that no user can act on.
quiet_third_party_noise()
