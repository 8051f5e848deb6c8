"""DPO with QLoRA: `accelerate launch recipes/dpo.py --config recipes/<model>/dpo/<variant>.yaml [--flag value ...]`."""

import sys

from lmolt_hub.training import main_for

if __name__ == "__main__":
    sys.exit(main_for("dpo"))
