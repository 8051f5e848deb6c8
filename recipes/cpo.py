"""CPO with QLoRA: `accelerate launch recipes/cpo.py --config recipes/<model>/cpo/<variant>.yaml [--flag value ...]`."""

import sys

from lmolt_hub.training import main_for

if __name__ == "__main__":
    sys.exit(main_for("cpo"))
