"""Five-point box blur of an image, edges clamped (each pixel averaged with its four neighbours)."""
import numpy as np


def blur5(img):
    h, w = img.shape
    out = np.empty_like(img)
    for i in range(h):
        for j in range(w):
            up, down = img[max(i - 1, 0), j], img[min(i + 1, h - 1), j]
            left, right = img[i, max(j - 1, 0)], img[i, min(j + 1, w - 1)]
            out[i, j] = (img[i, j] + up + down + left + right) / 5.0
    return out


def blur5_numpy(img):
    p = np.pad(img, 1, mode="edge")
    return (p[1:-1, 1:-1] + p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]) / 5.0
