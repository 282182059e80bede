"""Episode generators over the generated houses: ObjectNav episode files and R2R-format VLN data.

Note: these import the GL-free house plan (`navtune.envs.house.layout` / `occupancy`); the house
definition lives with its simulator so that there is one source of truth for the geometry.
"""
