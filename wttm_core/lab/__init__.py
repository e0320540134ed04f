"""The lab: what runs notebooks rather than models - sweeps over a notebook's parameters and classroom mode.

:mod:`wttm_core.lab.sweep` re-executes a notebook over a parameter grid (``wttm sweep``);
:mod:`wttm_core.lab.present` serves the interactive notebooks as Voila dashboards (``wttm present``).
"""
