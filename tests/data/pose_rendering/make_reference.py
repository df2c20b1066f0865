"""Write cv2_reference.npz: OpenCV's resizing of frames and of the original's heatmaps (see README.md).

Run outside the repository's environment with opencv-python-headless installed (documentation only:
nothing in the test suite imports cv2 or runs this script).
"""

import sys

import cv2
import imageio_ffmpeg
import numpy as np

from video_prediction.layers.pose_rendering import PENN_ACTION_LIMBS, render_heatmaps_reference


def main(clip, output):
    reader = imageio_ffmpeg.read_frames(clip)
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for _, f in zip(range(11), reader)]
    frame = np.ascontiguousarray(frames[10][40:90, 70:107])  # a 50x37 crop of a person
    rng = np.random.default_rng(0)
    pose = rng.uniform(0, 36, size=(13, 2))
    visibility = (rng.uniform(size=13) > 0.25).astype(np.float64)
    maps = render_heatmaps_reference(pose, visibility, (37, 29), scheme="limbs", limbs=PENN_ACTION_LIMBS, sigma=3.0)
    np.savez_compressed(
        output, frame=frame,
        frame_down=cv2.resize(frame[..., ::-1], (16, 16))[..., ::-1],  # BGR as the original, INTER_LINEAR
        frame_up=cv2.resize(frame[..., ::-1], (64, 64))[..., ::-1],
        pose=pose, visibility=visibility,
        maps_down=cv2.resize(maps, (16, 16)).astype(np.float32),  # all 48 channels at once, as the original
        maps_up=cv2.resize(np.ascontiguousarray(maps[..., :4]), (64, 48)).astype(np.float32))


if __name__ == "__main__":
    main(*sys.argv[1:])
