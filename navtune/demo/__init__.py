"""`navtune demo`: houses -> expert data -> tiny model -> SFT -> offline rounds -> evaluation -> report."""
from navtune.demo.config import FULL, QUICK, DemoConfig
from navtune.demo.pipeline import STAGES, Demo, DemoError, run_demo

__all__ = ["FULL", "QUICK", "STAGES", "Demo", "DemoConfig", "DemoError", "run_demo"]
