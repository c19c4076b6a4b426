"""Video after Ruder, Dosovitskiy and Brox (2016): optical flow, warping and consistency weights.

A driver-side package: it may import the core, the core never imports it. Its modules are imported
by name (``artistyle.video.flow``, ``artistyle.video.warp``) so that importing the package pulls in
neither OpenCV nor torch.
"""
