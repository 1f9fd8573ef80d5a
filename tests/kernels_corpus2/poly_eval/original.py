"""Cubic polynomial evaluated at every x by Horner's rule: c0 + x*(c1 + x*(c2 + x*c3))."""
import numpy as np


def poly_eval(x, c0, c1, c2, c3):
    return c0 + x * (c1 + x * (c2 + x * c3))
