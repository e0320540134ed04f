"""An alias kept for existing imports: the recipe, Tables 8-9 and the profiles live in :mod:`wttm_core.paper`.

``wttm_core.presets`` *is* that module (``from wttm_core.presets import RECIPE`` keeps working).
"""

import sys

from wttm_core import paper

sys.modules[__name__] = paper
