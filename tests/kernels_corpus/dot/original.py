"""Dot product in double precision, returned as a 0-d output."""


def dot(x, y):
    s = 0.0
    for a, b in zip(x, y):
        s += a * b
    return s
