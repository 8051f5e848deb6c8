"""SFT with QLoRA: `accelerate launch recipes/sft.py --config recipes/<model>/sft/<variant>.yaml [--flag value ...]`."""

import sys

from lmolt_hub.training import main_for

if __name__ == "__main__":
    sys.exit(main_for("sft"))
