"""What the emulator can tell about an app beyond running it: the limits advisor
(`rules.py`, on the app's settings in `facts.py` and what a run showed in `observed.py`),
the cost estimate (`cost.py`, prices in `prices.json`) and the power tuning core
(`tuning.py`). All pure; `app_facts.py` reads a template's AppSpec into facts.

The load generator imports only the pure modules (it is a client of the emulator and
never imports the template layer), so this file imports nothing.
"""
