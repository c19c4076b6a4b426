"""The version of ArtiStyle, in one place (pyproject.toml reads it from here).

Its own module so that the run records and the drivers import it without the package's face.
"""

__version__ = "0.5.0"
