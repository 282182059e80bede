"""`navtune demo`: houses -> expert data -> tiny model -> SFT -> failure mining -> AWR -> evaluation -> report."""
from navtune.demo.config import FULL, QUICK, DemoConfig
from navtune.demo.pipeline import AGENTS, STAGES, Demo, DemoError, run_demo

__all__ = ["AGENTS", "FULL", "QUICK", "STAGES", "Demo", "DemoConfig", "DemoError", "run_demo"]
