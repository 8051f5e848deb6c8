"""KTO with QLoRA: `accelerate launch recipes/kto.py --config recipes/<model>/kto/<variant>.yaml [--flag value ...]`."""

import sys

from lmolt_hub.training import main_for

if __name__ == "__main__":
    sys.exit(main_for("kto"))
