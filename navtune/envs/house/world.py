"""The MiniWorld environment that renders a `HouseSpec`, with a fast RGB-D path.

Importing this module starts OpenGL (headless EGL, see `gl.py`). Differences from a stock MiniWorld env,
each for a measured reason (docs/house.md):
- its own display list id (stock envs all compile into list 1, so two envs in a process draw each other's
  rooms);
- observations render into an 8-bit colour + 24-bit depth framebuffer without multisampling, and depth in
  metres is read from that same render (stock: a float multisampled buffer and a second pass for depth);
- deterministic steps (no domain randomisation), camera settings through the params (``Agent.randomize``
  overwrites them on every reset), and small unused framebuffers;
- `free_gl()` releases what `close()` leaves behind.
"""
from __future__ import annotations

import contextlib
import io
import math
from ctypes import POINTER, byref

import numpy as np

from navtune.envs.house.gl import import_miniworld

mw = import_miniworld()

from miniworld.entity import Box, MeshEnt  # noqa: E402
from miniworld.params import DEFAULT_PARAMS  # noqa: E402
from pyglet import gl  # noqa: E402

from navtune.envs.house.frames import heading_to_mw_dir, mw_dir_to_heading, mw_to_nav, nav_to_mw  # noqa: E402
from navtune.envs.house.layout import HouseSpec, generate_house  # noqa: E402

Z_NEAR, Z_FAR = 0.04, 100.0  # MiniWorld's clip planes (kept so frames match the stock renderer)


class FastFrameBuffer:
    """One FBO with an RGBA8 colour and a 24-bit depth renderbuffer; reads RGB and metric depth."""

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)
        self.fbo = gl.GLuint(0)
        gl.glGenFramebuffers(1, byref(self.fbo))
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.fbo)
        self.color_rb, self.depth_rb = gl.GLuint(0), gl.GLuint(0)
        gl.glGenRenderbuffers(1, byref(self.color_rb))
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, self.color_rb)
        gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, gl.GL_RGBA8, self.width, self.height)
        gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, gl.GL_COLOR_ATTACHMENT0, gl.GL_RENDERBUFFER, self.color_rb)
        gl.glGenRenderbuffers(1, byref(self.depth_rb))
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, self.depth_rb)
        gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, gl.GL_DEPTH_COMPONENT24, self.width, self.height)
        gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, gl.GL_DEPTH_ATTACHMENT, gl.GL_RENDERBUFFER, self.depth_rb)
        status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"framebuffer {self.width}x{self.height} incomplete (status {status:#x})")
        self._rgb = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self._depth = np.empty((self.height, self.width), dtype=np.float32)

    def bind(self) -> None:
        gl.glDisable(gl.GL_MULTISAMPLE)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.fbo)
        gl.glViewport(0, 0, self.width, self.height)

    def read(self, depth: bool) -> tuple[np.ndarray, np.ndarray | None]:
        gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, self.fbo)
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
        gl.glReadPixels(
            0, 0, self.width, self.height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, self._rgb.ctypes.data_as(POINTER(gl.GLubyte))
        )
        rgb = self._rgb[::-1].copy()
        d = None
        if depth:
            gl.glReadPixels(
                0, 0, self.width, self.height, gl.GL_DEPTH_COMPONENT, gl.GL_FLOAT,
                self._depth.ctypes.data_as(POINTER(gl.GLfloat)),
            )
            ndc = self._depth[::-1] * 2.0 - 1.0
            d = (2.0 * Z_NEAR * Z_FAR / (Z_FAR + Z_NEAR - ndc * (Z_FAR - Z_NEAR))).astype(np.float32)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        return rgb, d

    def free(self) -> None:
        gl.glDeleteFramebuffers(1, byref(self.fbo))
        gl.glDeleteRenderbuffers(1, byref(self.color_rb))
        gl.glDeleteRenderbuffers(1, byref(self.depth_rb))


def _trim_heap() -> None:
    """Give freed heap pages back to the OS after a house switch. Without it RSS creeps up by a few tens of
    MiB over hundreds of houses (glibc keeps the fragments of each house's arrays; measured flat after
    trimming, so it is not a leak)."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018  (glibc only)
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None


class _StaticBox(Box):
    """A coloured box compiled into the static display list (miniworld's Box is drawn every frame)."""

    @property
    def is_static(self) -> bool:
        return True


def make_params(forward_step: float, turn_deg: float, vfov_deg: float, cam_height: float):
    """Deterministic MiniWorld params: fixed step sizes and camera (no domain randomisation)."""
    p = DEFAULT_PARAMS.no_random()
    p.set("forward_step", float(forward_step))
    p.set("forward_drift", 0.0)
    p.set("turn_step", float(turn_deg))
    p.set("cam_fov_y", float(vfov_deg))
    p.set("cam_height", float(cam_height))
    p.set("cam_pitch", 0.0)
    p.set("cam_fwd_disp", 0.0)
    return p


class HouseWorld(mw.MiniWorldEnv):
    """A MiniWorld env whose world is the house of a seed; `load(seed)` swaps houses in place.

    `fast_render=False` keeps MiniWorld's stock observation path (used by the benchmark as the baseline).
    """

    def __init__(
        self,
        seed: int = 0,
        width: int = 320,
        height: int = 240,
        vfov_deg: float = 60.0,
        forward_step: float = 0.25,
        turn_deg: float = 30.0,
        cam_height: float = 1.5,
        depth: bool = True,
        fast_render: bool = True,
    ):
        # attributes used by the reset() that MiniWorldEnv.__init__ runs, so set before super().__init__
        self.house: HouseSpec = generate_house(seed)
        self.fast_render = fast_render
        self.want_depth = depth
        self.render_enabled = True
        self.last_depth: np.ndarray | None = None
        self._dl: int | None = None
        self._ent_lists: list[tuple[int, float, float, float]] = []  # (list id, mw x, mw z, radius)
        self.cull = True
        self._fb: FastFrameBuffer | None = None
        self._size = (int(width), int(height))
        with contextlib.redirect_stdout(io.StringIO()):  # "Falling back to num_samples=4" per framebuffer
            super().__init__(
                max_episode_steps=10**9,
                obs_width=width if not fast_render else 4,
                obs_height=height if not fast_render else 3,
                window_width=4,
                window_height=3,
                params=make_params(forward_step, turn_deg, vfov_deg, cam_height),
                domain_rand=False,
            )
        self.observation_space = mw.spaces.Box(0, 255, shape=(height, width, 3), dtype=np.uint8)
        self.reset(seed=seed)

    # ------------------------------------------------------------------ world
    def load(self, seed: int) -> HouseSpec:
        """Build the house of `seed` (no-op when it is already loaded); the agent keeps no pose."""
        if seed != self.house.seed:
            self.house = generate_house(seed)
            self.reset(seed=seed)
            _trim_heap()
        return self.house

    def _gen_world(self) -> None:
        h = self.house
        for r in h.rooms:
            self.add_rect_room(
                min_x=r.x0, max_x=r.x1, min_z=-r.y1, max_z=-r.y0,
                wall_tex=r.wall_tex, floor_tex=r.floor_tex, ceil_tex=r.ceil_tex,
            )
        # add_rect_room's edges: 0 east (x = max_x), 1 north (navtune y1), 2 west, 3 south (navtune y0)
        for d in h.doors:
            ra, rb = self.rooms[d.a], self.rooms[d.b]
            if d.vertical:  # room a west of x = line: its east edge; room b: its west edge
                ra.add_portal(0, min_z=-d.hi, max_z=-d.lo)
                rb.add_portal(2, min_z=-d.hi, max_z=-d.lo)
            else:  # room a south of y = line: its north edge; room b: its south edge
                ra.add_portal(1, min_x=d.lo, max_x=d.hi)
                rb.add_portal(3, min_x=d.lo, max_x=d.hi)
        for o in h.objects:
            if o.kind.mesh is None:
                ent = _StaticBox(color=o.color, size=o.height)
            else:
                ent = MeshEnt(mesh_name=o.kind.mesh_name(o.color), height=o.height, static=True)
            self.place_entity(ent, pos=nav_to_mw(o.x, o.y), dir=heading_to_mw_dir(o.heading))
        cx, cy = h.rooms[0].center
        self.params.set("light_pos", [cx, 2.5, -cy])
        free = h.rooms[0]
        self.place_agent(pos=nav_to_mw(free.x0 + 0.9, (free.y0 + free.y1) / 2), dir=0.0)

    # ------------------------------------------------------------------ pose (navtune frame)
    def set_pose(self, x: float, y: float, heading: float) -> None:
        self.agent.pos = nav_to_mw(x, y, 0.0)
        self.agent.dir = heading_to_mw_dir(heading)

    def pose(self) -> tuple[float, float, float, float]:
        """(x, y, z, heading) in navtune's convention."""
        x, y, z = mw_to_nav(self.agent.pos)
        return x, y, z, mw_dir_to_heading(self.agent.dir)

    # ------------------------------------------------------------------ rendering
    def _render_static(self) -> None:
        """Rooms into this env's own display list; each static object into a list of its own, so objects
        outside the horizontal field of view can be skipped (a ball mesh alone has 5,192 triangles)."""
        if self._dl is None:
            self._dl = int(gl.glGenLists(1))
        for lid, *_ in self._ent_lists:
            gl.glDeleteLists(lid, 1)
        self._ent_lists = []
        gl.glNewList(self._dl, gl.GL_COMPILE)  # replaces the previous house's list
        gl.glLightfv(gl.GL_LIGHT0, gl.GL_POSITION, (gl.GLfloat * 4)(*list(self.light_pos) + [1]))
        gl.glLightfv(gl.GL_LIGHT0, gl.GL_AMBIENT, (gl.GLfloat * 4)(*self.light_ambient))
        gl.glLightfv(gl.GL_LIGHT0, gl.GL_DIFFUSE, (gl.GLfloat * 4)(*self.light_color))
        gl.glEnable(gl.GL_LIGHTING)
        gl.glEnable(gl.GL_LIGHT0)
        gl.glShadeModel(gl.GL_SMOOTH)
        gl.glEnable(gl.GL_COLOR_MATERIAL)
        gl.glColorMaterial(gl.GL_FRONT_AND_BACK, gl.GL_AMBIENT_AND_DIFFUSE)
        gl.glEnable(gl.GL_TEXTURE_2D)
        for room in self.rooms:
            room._render()
        gl.glEndList()
        # every entity sets its own texture / colour state, so drawing a subset gives the same pixels
        for ent in self.entities:
            if ent.is_static:
                lid = int(gl.glGenLists(1))
                gl.glNewList(lid, gl.GL_COMPILE)
                ent.render()
                gl.glEndList()
                self._ent_lists.append((lid, float(ent.pos[0]), float(ent.pos[2]), float(ent.radius)))

    def _draw_static(self, cam_pos: np.ndarray | None = None, cam_dir: np.ndarray | None = None) -> None:
        gl.glCallList(self._dl)
        if cam_pos is None or not self.cull or abs(self.agent.cam_pitch) > 1e-9:
            for lid, *_ in self._ent_lists:
                gl.glCallList(lid)
            return
        # conservative horizontal frustum test (the camera is level)
        half = math.atan(math.tan(math.radians(self.agent.cam_fov_y) / 2) * self._size[0] / self._size[1])
        fx, fz = float(cam_dir[0]), float(cam_dir[2])
        norm = math.hypot(fx, fz)
        fx, fz = fx / norm, fz / norm
        for lid, x, z, r in self._ent_lists:
            dx, dz = x - float(cam_pos[0]), z - float(cam_pos[2])
            dist = math.hypot(dx, dz)
            rr = r * 1.25 + 0.05  # margin: the bounding radius is computed from a normalised mesh
            if dist > rr:
                ang = math.acos(max(-1.0, min(1.0, (dx * fx + dz * fz) / dist)))
                if ang > half + math.asin(rr / dist):
                    continue
            gl.glCallList(lid)

    def _render_world(self, frame_buffer, render_agent):
        self._draw_static()
        for ent in self.entities:
            if not ent.is_static and ent is not self.agent:
                ent.render()
        if render_agent:
            self.agent.render()
        return frame_buffer.resolve()

    def render_view(
        self, cam_pos: np.ndarray, cam_dir: np.ndarray, depth: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Render RGB (H, W, 3) uint8 and, if asked, depth (H, W) float32 metres (z-depth along the view
        axis) from one pass, with a MiniWorld camera position/direction."""
        depth = self.want_depth if depth is None else depth
        self.shadow_window.switch_to()
        if self._fb is None:
            self._fb = FastFrameBuffer(*self._size)
        fb = self._fb
        fb.bind()
        gl.glClearColor(*self.sky_color, 1.0)
        gl.glClearDepth(1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT | gl.GL_DEPTH_BUFFER_BIT)
        gl.glMatrixMode(gl.GL_PROJECTION)
        gl.glLoadIdentity()
        gl.gluPerspective(self.agent.cam_fov_y, fb.width / float(fb.height), Z_NEAR, Z_FAR)
        gl.glMatrixMode(gl.GL_MODELVIEW)
        gl.glLoadIdentity()
        gl.gluLookAt(*cam_pos, *(cam_pos + cam_dir), 0, 1.0, 0.0)
        self._draw_static(cam_pos, cam_dir)
        for ent in self.entities:
            if not ent.is_static and ent is not self.agent:
                ent.render()
        return fb.read(depth)

    def render_obs(self, frame_buffer=None):
        if not self.fast_render or frame_buffer is not None:
            return super().render_obs(frame_buffer)
        if not self.render_enabled:
            self.last_depth = None
            return None
        rgb, self.last_depth = self.render_view(self.agent.cam_pos, self.agent.cam_dir)
        return rgb

    def render_at(
        self, x: float, y: float, heading: float, elevation: float = 0.0, depth: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Render from a navtune pose (elevation: radians, positive up) without moving the agent."""
        saved = (self.agent.pos, self.agent.dir, self.agent.cam_pitch)
        try:
            self.agent.pos = nav_to_mw(x, y, 0.0)
            self.agent.dir = heading_to_mw_dir(heading)
            self.agent.cam_pitch = math.degrees(elevation)
            return self.render_view(self.agent.cam_pos, self.agent.cam_dir, depth)
        finally:
            self.agent.pos, self.agent.dir, self.agent.cam_pitch = saved

    # ------------------------------------------------------------------ cleanup
    def free_gl(self) -> None:
        """Release this env's GL objects and context (MiniWorld's close() frees nothing)."""
        try:
            self.shadow_window.switch_to()
            if self._fb is not None:
                self._fb.free()
                self._fb = None
            if self._dl is not None:
                gl.glDeleteLists(self._dl, 1)
                self._dl = None
            for lid, *_ in self._ent_lists:
                gl.glDeleteLists(lid, 1)
            self._ent_lists = []
            for fb in (self.obs_fb, self.vis_fb):
                gl.glDeleteFramebuffers(1, byref(fb.multi_fbo))
                gl.glDeleteFramebuffers(1, byref(fb.final_fbo))
        finally:
            self.shadow_window.close()

    def close(self) -> None:
        super().close()
        if getattr(self, "shadow_window", None) is not None and self._dl is not None:
            self.free_gl()
