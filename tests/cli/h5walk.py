#!/usr/bin/python3
"""h5walk.py -- compare two HDF5 files object by object with h5py.

h5walk.py A B [GROUP,...] [--root-attrs]: every group and dataset below
each GROUP (the whole file when none is given) must exist in both files
with the same attributes (strings compared as text, so vlen and
fixed-length string lists are equal when their texts are; an empty
float64 array equals an empty list), and datasets with the same shape,
dtype and bytes. --root-attrs also compares the root's attributes.
Prints each difference and exits 1 when there is one.
"""
import sys

import h5py
import numpy as np


def val(v):
    if isinstance(v, np.ndarray):
        if v.size == 0:
            return []
        if v.dtype.kind in "SO":
            return [x.decode() if isinstance(x, bytes) else x
                    for x in v.tolist()]
        return v.tolist()
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def attrs(o):
    return {k: val(v) for k, v in o.attrs.items()}


def tree(path, under, root_attrs):
    out = {}
    with h5py.File(path, "r") as h:
        if root_attrs:
            out["/"] = ("root", attrs(h))
        for u in under or ["/"]:
            if u not in h:
                continue
            g = h[u]
            base = "" if u == "/" else u + "/"
            if u != "/":
                out[u] = ("group", attrs(g))

            def walk(n, o):
                if isinstance(o, h5py.Dataset):
                    out[base + n] = ("dataset", o.shape, str(o.dtype),
                                     o[()].tobytes(), attrs(o))
                else:
                    out[base + n] = ("group", attrs(o))
            g.visititems(walk)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root_attrs = "--root-attrs" in sys.argv
    a, b = args[0], args[1]
    under = args[2].split(",") if len(args) > 2 else []
    ta, tb = tree(a, under, root_attrs), tree(b, under, root_attrs)
    bad = 0
    for k in sorted(set(ta) | set(tb)):
        if ta.get(k) != tb.get(k):
            bad += 1
            print("differs: %s: %.200s | %.200s" % (k, ta.get(k), tb.get(k)))
    print("%d and %d objects, %d differences" % (len(ta), len(tb), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
