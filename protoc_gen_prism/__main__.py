"""`python -m protoc_gen_prism` runs the plugin."""

import sys

from protoc_gen_prism.plugin import main

sys.exit(main())
