"""Sample sheet of a house: six egocentric frames along an expert ObjectNav episode and the top-down map
with the expert path (the README's picture of the embedded simulator)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from navtune.envs.house.topdown import _font


def sample_sheet(seed: int, width: int = 320, height: int = 240, frames: int = 6) -> Image.Image:
    from navtune.envs.house.env import HouseEnvConfig, HouseNavEnv
    from navtune.envs.house.topdown import render_topdown
    from navtune.envs.house.episodes.objectnav import generate_objectnav_episodes

    episode = max(generate_objectnav_episodes([seed], per_house=4), key=lambda e: e.geodesic_distance)
    env = HouseNavEnv(HouseEnvConfig(width=width, height=height, depth=True))
    try:
        obs = env.reset(episode)
        shots = [obs]
        while True:
            r = env.step(env.expert_action())
            shots.append(r.observation)
            if r.done:
                break
        success = r.info["success"]
        picks = np.linspace(0, len(shots) - 1, frames).round().astype(int)
        topdown = render_topdown(env.house, size=2 * height + 40, expert_path=[(p.x, p.y) for p in env.poses],
                                 goals=env.goals, agent=env.poses[0])
        house = env.house
    finally:
        env.close()
    cols = 3
    rows = (frames + cols - 1) // cols
    pad, cap = 6, 16
    map_img = Image.fromarray(topdown)
    W = cols * (width + pad) + pad + map_img.width + pad
    H = max(rows * (height + cap + pad) + pad, map_img.height + 2 * pad + cap) + 28
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    font = _font(13)
    d.text((pad, 6), f"house {seed}: {', '.join(r.room_type for r in house.rooms)} | task: {episode.instruction} "
           f"| expert {'success' if success else 'failure'} in {len(shots) - 1} steps", fill=(0, 0, 0), font=font)
    for k, t in enumerate(picks):
        o = shots[t]
        x = pad + (k % cols) * (width + pad)
        y = 28 + pad + (k // cols) * (height + cap + pad)
        sheet.paste(Image.fromarray(o.rgb), (x, y))
        d.text((x, y + height + 1), f"t={t} {o.info['room']}  d={o.info['distance_to_goal']:.1f} m", fill=(0, 0, 0),
               font=font)
    mx = pad + cols * (width + pad)
    sheet.paste(map_img, (mx, 28 + pad))
    d.text((mx, 28 + pad + map_img.height + 2), "top-down map: expert path (green), goal instances (green ring)",
           fill=(0, 0, 0), font=font)
    return sheet
