"""Headless OpenGL for MiniWorld: EGL on Mesa (no display, no X server), and clear errors when it cannot start.

pyglet must be told to go headless before anything imports ``pyglet.gl`` (``import miniworld`` already
creates a GL context), so every navtune module that needs MiniWorld calls `import_miniworld()` instead of
importing it directly.
"""
from __future__ import annotations

import os
import re
from types import ModuleType

#: Debian packages providing each shared library pyglet / MiniWorld load.
DEBIAN_PACKAGES = {"GL": "libgl1", "GLU": "libglu1-mesa", "EGL": "libegl1", "freetype": "libfreetype6"}


class HouseGLError(RuntimeError):
    """OpenGL could not start; the message names the missing library and the package providing it."""


def setup_headless() -> None:
    """Make pyglet use EGL without a window system. Idempotent; must run before pyglet.gl is imported.
    Set ``NAVTUNE_GL_WINDOW=1`` to keep pyglet's default (an X display) instead."""
    if os.environ.get("NAVTUNE_GL_WINDOW") == "1":
        return
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    import pyglet

    if not pyglet.options.get("headless"):
        import sys

        if "pyglet.gl" in sys.modules:
            raise HouseGLError(
                "pyglet.gl was imported before navtune could select headless EGL; "
                "set PYGLET_HEADLESS=1 in the environment or import navtune.envs.house first"
            )
        pyglet.options["headless"] = True
    pyglet.options["debug_gl"] = False  # glGetError after every call costs ~30 % of frame time


def explain_gl_error(exc: BaseException) -> HouseGLError:
    """Turn pyglet's loader errors into one message naming the library and the Debian package."""
    text = str(exc)
    m = re.search(r'Library "([^"]+)" not found', text)
    if m:
        lib = m.group(1)
        pkg = DEBIAN_PACKAGES.get(lib, f"the package providing lib{lib}")
        return HouseGLError(
            f'OpenGL could not start: shared library "{lib}" not found. Install it with '
            f"`apt-get install --no-install-recommends {pkg}` (all of: {' '.join(DEBIAN_PACKAGES.values())})."
        )
    if "NoSuchDisplay" in type(exc).__name__ or "display" in text.lower():
        return HouseGLError(
            f"OpenGL could not start ({type(exc).__name__}: {text}); no display is needed: set "
            "PYGLET_HEADLESS=1 before importing pyglet, and install libegl1."
        )
    return HouseGLError(f"OpenGL could not start: {type(exc).__name__}: {text}")


_MINIWORLD: ModuleType | None = None


def import_miniworld() -> ModuleType:
    """Import MiniWorld headless (creating this process's GL context), raising `HouseGLError` on failure."""
    global _MINIWORLD
    if _MINIWORLD is not None:
        return _MINIWORLD
    setup_headless()
    try:
        import miniworld  # noqa: F401
        import miniworld.miniworld as mw
    except Exception as e:  # pyglet raises ImportError / NoSuchDisplayException / EGL errors
        raise explain_gl_error(e) from e
    _patch_texture_loader()
    _MINIWORLD = mw
    return mw


def _patch_texture_loader() -> None:
    """Load textures with Pillow instead of pyglet: pyglet 1.5 converts pixel formats with a regex per pixel
    (~2.5 s per 512x512 texture, most of an env's start-up); the uploaded texels are the same."""
    from ctypes import byref
    from types import SimpleNamespace

    from miniworld.opengl import Texture
    from PIL import Image
    from pyglet import gl

    def load(cls, tex_path):
        img = Image.open(tex_path).convert("RGBA").transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        w, h = img.size
        tex_id = gl.GLuint(0)
        gl.glGenTextures(1, byref(tex_id))
        gl.glEnable(gl.GL_TEXTURE_2D)
        gl.glBindTexture(gl.GL_TEXTURE_2D, tex_id)
        gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB, w, h, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, img.tobytes())
        gl.glHint(gl.GL_GENERATE_MIPMAP_HINT, gl.GL_NICEST)
        gl.glGenerateMipmap(gl.GL_TEXTURE_2D)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR_MIPMAP_LINEAR)
        gl.glBindTexture(gl.GL_TEXTURE_2D, 0)
        return SimpleNamespace(target=gl.GL_TEXTURE_2D, id=tex_id.value, width=w, height=h)

    if os.environ.get("NAVTUNE_PYGLET_TEXTURES") != "1":
        Texture.load = classmethod(load)
