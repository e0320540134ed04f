"""The lab: what runs notebooks rather than models - the main job, sweeps over a notebook's parameters and
classroom mode.

:mod:`wttm_core.lab.runner` executes every notebook (``wttm notebooks`` / ``make notebooks``; progress lines from
:mod:`wttm_core.lab.progress`, the index page from :mod:`wttm_core.lab.index`); :mod:`wttm_core.lab.shipped_teacher`
is the default profile's small trained teacher; :mod:`wttm_core.lab.sweep` re-executes a notebook over a parameter
grid (``wttm sweep``); :mod:`wttm_core.lab.present` serves the interactive notebooks as Voila dashboards
(``wttm present``).
"""
