#!/usr/bin/python3
"""Writes the raw RGB inputs that faceboxes_reference.mjs reads (not committed: rebuild them).

Usage: /usr/bin/python3 faceboxes_inputs.py FACE_API_DEMO_DIR OUT_DIR [SHARED_DATA_DIR]

  sample1_face_256x256.rgb   face-api 1.7.15 demo/sample1.jpg (MIT): cv2.imread (BGR),
                             rows 204..715, cols 264..775 (x0=264 y0=204 w=h=512),
                             cv2.resize to 256x256 INTER_AREA (an exact 2x2 box average),
                             cvtColor BGR2RGB, raw bytes row-major HWC.
  person-child_680x1024.rgb  only with SHARED_DATA_DIR: faces-small/Vrooli_unsplash/person-child.jpg
                             (800x1204), cv2.imread, cv2.resize to 680x1024 INTER_AREA
                             (long side 1024, short side round(800*1024/1204)), cvtColor BGR2RGB.
                             Shared data: never commit these pixels.
Colour conversion and INTER_AREA commute here (a per-channel average), and OpenCV C++ 4.6
(cv::imread, cv::Mat(roi), cv::resize INTER_AREA, cv::cvtColor) gives the same bytes.
"""
import os
import sys

import cv2

demo, out = sys.argv[1], sys.argv[2]
shared = sys.argv[3] if len(sys.argv) > 3 else None
os.makedirs(out, exist_ok=True)


def write(name, bgr):
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    path = os.path.join(out, f'{name}_{w}x{h}.rgb')
    with open(path, 'wb') as f:
        f.write(rgb.tobytes())
    print(path)


img = cv2.imread(os.path.join(demo, 'sample1.jpg'))
write('sample1_face', cv2.resize(img[204:204 + 512, 264:264 + 512], (256, 256),
                                 interpolation=cv2.INTER_AREA))
if shared:
    img = cv2.imread(os.path.join(shared, 'faces-small/Vrooli_unsplash/person-child.jpg'))
    h, w = img.shape[:2]
    s = 1024 / max(h, w)
    write('person-child', cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA))
