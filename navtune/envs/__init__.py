"""Simulator backends behind one small protocol (envs/protocol.py). Knows nothing of models."""
