"""Video: clips and frame folders in and out (:mod:`.frames`, :mod:`.encode`, :mod:`.extra`).

Needs the ``video`` extra (PyAV and OpenCV); :mod:`.extra` says so in one line without importing
either. The core library never imports this package.
"""
