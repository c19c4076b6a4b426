"""Video after Ruder, Dosovitskiy and Brox (2016): clips and frame folders in and out, optical flow,
warping and consistency weights.

* :mod:`.frames`, :mod:`.encode`, :mod:`.audio` -- reading clips and frame folders, encoding the result
  (PyAV, which ships the FFmpeg libraries); :mod:`.extra` says in one line what to install without
  importing either dependency.
* :mod:`.flow`, :mod:`.warp` -- optical flow (OpenCV), consistency weights, warping.

A driver-side package: it may import the core, the core never imports it. Its modules are imported
by name so that importing the package pulls in neither PyAV, OpenCV nor torch.
"""
