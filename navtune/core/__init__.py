"""Small shared pieces: action names, geometry conventions, atomic IO and registries."""
