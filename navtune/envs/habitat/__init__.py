"""Habitat-Sim backend (optional extra): `HabitatNavEnv` for ObjectNav / VLN-CE episodes in habitat's
dataset formats. `habitat_sim` is imported only when an env is built (`import_habitat_sim`), with a clear
message when it is absent; importing this package never needs it."""
from navtune.envs.habitat.coords import habitat_to_navtune, navtune_to_habitat
from navtune.envs.habitat.env import (
    HabitatConfig,
    HabitatNavEnv,
    HabitatSimUnavailable,
    import_habitat_sim,
    make_habitat_env,
)

__all__ = [
    "HabitatConfig",
    "HabitatNavEnv",
    "HabitatSimUnavailable",
    "habitat_to_navtune",
    "import_habitat_sim",
    "make_habitat_env",
    "navtune_to_habitat",
]
